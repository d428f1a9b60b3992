import type { AccessFacts, BrokerRepository, PendingRelease, ReleaseOutcome, StoredResource } from './broker-repository.js';
import type { EarTokenVerifier } from './ear-token-verifier.js';
import { releaseAuditEvent, type ReleasedTo } from './grant-audit.js';
import { GroupCommit } from './group-commit.js';
import { KbsError } from './kbs-errors.js';
import type { ResourcePath } from './kbs-wire.js';
import { encryptResource, type ResourceJwe } from './resource-jwe.js';
import { decideResourceAccess, type AppraisedVector } from './resource-policy.js';
import type { ResourceVault } from './resource-vault.js';
import { revocationRefusal } from './revocation-state.js';
import { requireSession, type SessionCookies } from './session-cookie.js';
import type { TeeKeyCache, TeePublicKey } from './tee-public-key.js';
import { NO_VERIFIER, type StandingCheck } from './verifier-standing.js';
import { bytesEqual } from '../bytes/bytes-equal.js';

/** How a resource request authenticated: the session cookie, a bearer token, or neither. */
export interface ResourceCredentials {
  /** The `kbs-session-id` cookie's value. */
  readonly cookie: string | undefined;
  readonly bearer: string | undefined;
}

export interface ResourceReleaseOptions {
  readonly repository: BrokerRepository;
  readonly vault: ResourceVault;
  readonly tokens: EarTokenVerifier;
  readonly cookies: SessionCookies;
  /** The tee-pubkeys `/attest` checked, shared with it: a session's stored key is found here. */
  readonly teeKeys: TeeKeyCache;
  /** The good-standing rule's check (`verifier_standing` resources); default: no verifier, refused. */
  readonly standing?: StandingCheck;
  /** Unix milliseconds. */
  readonly now: () => number;
}

/** The most releases one transaction records. */
export const MAX_RELEASE_BATCH = 64;

/** Who asks and what the broker read about it (`ResourceRelease.requester`). */
interface Requester extends ReleasedTo {
  readonly teeKey: TeePublicKey;
  /** The trustworthiness vectors `required_claims` is checked against: the session's, or every submodule's of the token. */
  readonly vectors: readonly AppraisedVector[] | null;
  readonly facts: AccessFacts;
}

/**
 * Resource release, the last step of both models: who asks (a passport token or an attested session),
 * whether its node may have the resource now, and the resource wrapped to its tee-pubkey. Every
 * refusal is a `KbsError`; a database fault propagates and the request fails closed (500).
 */
export class ResourceRelease {
  /** The releases' records by group commit (`BrokerRepository.recordReleases`): a release alone is a batch of one. */
  private readonly records: GroupCommit<PendingRelease, ReleaseOutcome>;

  constructor(private readonly options: ResourceReleaseOptions) {
    this.records = new GroupCommit((batch) => options.repository.recordReleases(batch), MAX_RELEASE_BATCH);
  }

  /**
   * A resource as a JWE to the requester's tee-pubkey. A bearer token is checked first (trusted issuer,
   * ES256, times, affirming); else the session cookie must name an attested, unexpired session. Then,
   * read in one database round trip: the node must not be revoked, nor its credential older than its
   * reinstatement (`revocationRefusal`); the resource must exist and its policy allow the node (with
   * `required_claims`, the session's or every token submodule's vector must affirm each; a credential
   * without any vector is `TokenVerifierError`, so that a client attests again); with
   * `verifier_standing`, the verifier must trust the node now by the same AK (`StandingCheck`). Last,
   * the release's `resource.release` record is appended to the audit log and, under its stream's lock,
   * everything before is checked again on the facts as they are then, in one transaction that commits
   * before the resource is wrapped: a release the log cannot take fails (500) and the secret is not sent.
   * Releases that arrive while one is being recorded share the next transaction (`GroupCommit`).
   */
  async release(path: ResourcePath, credentials: ResourceCredentials): Promise<ResourceJwe> {
    const requester = await this.requester(path, credentials);
    const resource = this.allowed(requester, requester.facts);
    if (resource.policy.verifier_standing === true) {
      const standing = await (this.options.standing ?? NO_VERIFIER).refusal(requester.agentId, requester.facts.akTpm ?? requester.akTpm);
      if (standing?.unavailable === true) {
        // Fail closed, but as an outage a client may wait out: 403 is the policy's final word to a KBS client.
        throw new KbsError('VerifierUnavailable', `node ${requester.agentId}'s good standing cannot be checked now: ${standing.reason}`);
      }
      if (standing !== undefined) {
        throw new KbsError('PolicyDeny', `node ${requester.agentId} is not in good standing: ${standing.reason}`);
      }
    }
    const verifierStanding = resource.policy.verifier_standing === true;
    let released = resource;
    // Checked again under the node's stream lock, before anything leaves: a revocation or deletion of
    // the node since the first read (or while the verifier was asked, which may take up to its client's
    // timeout), a deletion of the resource or a narrower policy refuse; a revocation appended later
    // follows this release in the node's stream. The resource sent is the one read then.
    const outcome = await this.records.submit({
      event: releaseAuditEvent({ path, to: requester, verifierStanding, at: this.options.now() }),
      path,
      agentId: requester.agentId,
      confirm: (facts) => {
        released = this.allowed(requester, facts);
      },
    });
    if (outcome !== 'recorded') throw outcome.refused;
    return encryptResource(this.options.vault.open(path, released.sealed), requester.teeKey);
  }

  /**
   * The resource, when `facts` let the requester have it: its credential was issued with the node's
   * stored AK (when this broker has one), the node's revocation does not refuse the credential, and the
   * resource exists and its policy allows the node. @throws KbsError naming the refusal.
   */
  private allowed(requester: Requester, facts: AccessFacts): StoredResource {
    if (facts.akTpm !== null && !sameAk(requester.akTpm, facts.akTpm)) {
      throw new KbsError(
        'TokenVerifierError',
        requester.via === 'token'
          ? `token was not issued for node ${requester.agentId}'s registered AK: attest again`
          : `the session was not attested with node ${requester.agentId}'s registered AK: attest again`,
      );
    }
    const refusal = revocationRefusal(facts.revocation, requester.issuedAtMs, requester.via === 'session' ? 'milliseconds' : 'seconds');
    if (refusal !== undefined) {
      throw new KbsError('TokenVerifierError', `node ${requester.agentId} ${refusal}`);
    }
    if (facts.resource === undefined) {
      throw new KbsError('PluginNotFound', 'no such resource');
    }
    const decision = decideResourceAccess(facts.resource.policy, { agentId: requester.agentId, groups: facts.groups, via: requester.via, vectors: requester.vectors });
    if (!decision.allowed) {
      // A credential without a vector is unusable, not forbidden: 401 makes a KBS client attest again.
      throw new KbsError(decision.attestAgain ? 'TokenVerifierError' : 'PolicyDeny', decision.reason);
    }
    return facts.resource;
  }

  /**
   * Who asks, and the facts about its node and the resource, in one database round trip: a bearer token
   * is checked first (trusted issuer, ES256, times, affirming); else the session cookie must name an
   * attested, unexpired session. Its AK is compared with the node's stored one by `allowed` (a token
   * minted, or a session attested, before the node was enrolled again with another AK is refused).
   */
  private async requester(
    path: ResourcePath,
    credentials: ResourceCredentials,
  ): Promise<Requester> {
    const repository = this.options.repository;
    if (credentials.bearer !== undefined) {
      const token = await this.options.tokens.verify(credentials.bearer, this.options.now() / 1000);
      const facts = await repository.tokenAccessFacts(path, token.agentId);
      return {
        agentId: token.agentId,
        teeKey: token.teeKey,
        teePubkey: JSON.stringify(token.teePubkey),
        via: 'token',
        credential: credentials.bearer,
        issuer: token.issuer,
        issuedAtMs: token.issuedAt * 1000,
        akTpm: token.akTpm,
        vectors: token.vectors,
        facts,
      };
    }
    if (credentials.cookie !== undefined) {
      const opened = requireSession(this.options.cookies, credentials.cookie, this.options.now(), 'TokenVerifierError');
      const facts = await repository.sessionAccessFacts(path, opened.id);
      const session = facts.session;
      if (session === undefined || session.attested === null) {
        throw new KbsError('TokenVerifierError', 'the session is not attested');
      }
      const teeKey = await this.options.teeKeys.parseText(session.attested.teePubkey);
      const vectors = session.attested.vector === null ? null : [{ source: 'the session', vector: session.attested.vector }];
      return {
        agentId: session.attested.agentId,
        teeKey,
        teePubkey: session.attested.teePubkey,
        via: 'session',
        credential: opened.id,
        issuer: null,
        issuedAtMs: session.attested.at,
        akTpm: session.attested.akTpm,
        vectors,
        facts,
      };
    }
    throw new KbsError('TokenNotFound', 'send the session cookie or an Authorization: Bearer token');
  }
}

/** Whether a credential's AK (a token's `ak_tpm`, a session's; absent: null) is the stored AK: the same TPM2B_PUBLIC bytes. */
function sameAk(credentialAk: string | null, storedAk: string): boolean {
  return credentialAk !== null && bytesEqual(Buffer.from(credentialAk, 'base64'), Buffer.from(storedAk, 'base64'));
}
