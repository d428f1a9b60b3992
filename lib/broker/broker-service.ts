import type { ResourceJwe } from './resource-jwe.js';
import type { Logger } from 'pino';
import { IronlimeError } from '../../interfaces/errors.js';
import { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { CompiledNodeCache, compileNode, nodeDigest, type BrokerNodeRecord, type CompiledNode, type CompiledNodeEntry } from './broker-node.js';
import type { AccessFacts, BrokerRepository } from './broker-repository.js';
import type { EarTokenIssuer } from './ear-token.js';
import type { EarTokenVerifier } from './ear-token-verifier.js';
import { KbsError } from './kbs-errors.js';
import { KBS_PROTOCOL_VERSION, REPORT_DATA_HASH, reportDataOf, TEE_TPM, type ResourcePath, type RuntimeData } from './kbs-wire.js';
import { encryptResource } from './resource-jwe.js';
import { decideResourceAccess, type ResourcePolicy } from './resource-policy.js';
import type { ResourceVault } from './resource-vault.js';
import { TeeKeyCache, type TeePublicKey } from './tee-public-key.js';
import { UsedSessions } from './used-sessions.js';
import type { OpenedSession, SessionCookies } from './session-cookie.js';
import { appraiseTpmEvidence, type UntrustedTpmEvidence } from './tpm-evidence.js';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { revocationRefusal } from './revocation-state.js';
import { NO_VERIFIER, type StandingCheck } from './verifier-standing.js';

export interface BrokerServiceOptions {
  readonly repository: BrokerRepository;
  readonly vault: ResourceVault;
  readonly issuer: EarTokenIssuer;
  readonly tokens: EarTokenVerifier;
  readonly cookies: SessionCookies;
  readonly log: Logger;
  /** The good-standing rule's check (`verifier_standing` resources); default: no verifier, refused. */
  readonly standing?: StandingCheck;
  /** Unix milliseconds; tests pass a fixed clock. */
  readonly now?: () => number;
}

const ALREADY_ATTESTED = 'this session has already attested';

/** Session rows are deleted this long after their cookie expired. */
export const SESSION_SWEEP_GRACE_MS = 10 * 60_000;

/** `/auth` answer: the session cookie's value and the Challenge body. */
export interface AuthOutcome {
  readonly cookie: string;
  readonly challenge: { readonly nonce: string; readonly 'extra-params': Readonly<Record<string, unknown>> };
}

/** How a resource request authenticated: the session cookie, a bearer token, or neither. */
export interface ResourceCredentials {
  /** The `kbs-session-id` cookie's value. */
  readonly cookie: string | undefined;
  readonly bearer: string | undefined;
}

/**
 * The broker's decisions: the RCAR handshake, appraisal of TPM evidence by the verifier's engine, token
 * issue, resource release under policy, revocation. The routes only move bytes to and from here. Every
 * refusal is a `KbsError`; a database fault propagates and the request fails closed (500).
 */
export class BrokerService {
  private readonly nodes = new CompiledNodeCache();
  private readonly mbMemo = new MeasuredBootMemo();
  private readonly teeKeys = new TeeKeyCache();
  private readonly usedSessions = new UsedSessions();
  private readonly now: () => number;

  constructor(private readonly options: BrokerServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Request → Challenge: protocol 0.4.0 and tee `tpm` only; a new stateless session (`SessionCookies`):
   * the cookie and its derived 32-byte nonce, nothing written.
   */
  auth(request: { version: string; tee: string }): AuthOutcome {
    if (request.version !== KBS_PROTOCOL_VERSION) {
      throw new KbsError('AttestationError', `protocol version ${request.version} is not supported (need ${KBS_PROTOCOL_VERSION})`);
    }
    if (request.tee !== TEE_TPM) {
      throw new KbsError('AttestationError', `tee ${request.tee} is not supported (only ${TEE_TPM})`);
    }
    const { cookie, session } = this.options.cookies.issue(this.now());
    return { cookie, challenge: { nonce: session.nonce, 'extra-params': { 'selected-hash-algorithm': REPORT_DATA_HASH } } };
  }

  /**
   * Attestation → token. The cookie must open (MAC, unexpired), `runtime-data.nonce` must be its nonce,
   * the node must be known and neither revoked nor reinstated since the session began, and its evidence
   * must pass `appraiseTpmEvidence` over `reportDataOf` (runtime-data and `additionalEvidence`, hashed
   * with the SHA-256 every Challenge selects) against the node's policies as stored. A non-empty
   * `additionalEvidence` (device evidence no verifier here can appraise) is refused.
   * Single use of the nonce: the session id is the primary key of `broker_sessions`, and a session is
   * claimed by inserting its row — attested on success, burnt (no node) on failure — with `on conflict
   * do nothing`, so of any number of attempts on one session, in any number of workers, at most one
   * inserts and only an inserting, passing attempt gets a token. The attested row is inserted by one
   * statement that also reads, at that instant, whether the session was used, the node's revocation and
   * its stored policy digest, and inserts only if they allow it (`claimAttestedSession`): the
   * appraisal uses the node as compiled here, and a node changed since (any worker) is compiled afresh
   * and appraised again. Rows outlive the cookie (swept only after `SESSION_SWEEP_GRACE_MS`), so an
   * expired cookie is refused by its time first. A session this worker knows to be used
   * (`UsedSessions`) is refused before the appraisal, and no second row is attempted for it.
   */
  async attest(cookie: string | undefined, runtimeData: RuntimeData, evidence: UntrustedTpmEvidence, additionalEvidence: string): Promise<string> {
    const session = this.openSession(cookie, 'AttestationError');
    if (this.usedSessions.has(session.id)) {
      throw new KbsError('AttestationError', ALREADY_ATTESTED);
    }
    try {
      return await this.appraiseAndClaim(session, runtimeData, evidence, additionalEvidence);
    } catch (error) {
      if (!this.usedSessions.has(session.id)) {
        await this.options.repository.burnSession({ id: session.id, nonce: session.nonce, expiresAt: session.expiresAt });
        this.usedSessions.remember(session.id);
      }
      throw error;
    }
  }

  private async appraiseAndClaim(session: OpenedSession, runtimeData: RuntimeData, evidence: UntrustedTpmEvidence, additionalEvidence: string): Promise<string> {
    if (additionalEvidence !== '') {
      // Trustee appraises every device named there; this broker has no device verifier, so it vouches for none.
      throw new KbsError('AttestationError', 'additional_evidence is not appraised by this broker: send it empty');
    }
    if (!bytesEqual(Buffer.from(runtimeData.nonce, 'utf8'), Buffer.from(session.nonce, 'utf8'))) {
      throw new KbsError('AttestationError', 'runtime-data nonce is not this session\'s nonce');
    }
    const teeKey = await this.teeKeys.parse(runtimeData['tee-pubkey']);
    const agentId = evidence.agent_id;
    const reportData = reportDataOf({ runtimeData, additionalEvidence, hash: REPORT_DATA_HASH, tee: TEE_TPM });
    const cached = this.nodes.lookup(agentId);
    let fresh = cached === undefined;
    let entry: CompiledNodeEntry = cached ?? (await this.loadNode(agentId));
    for (;;) {
      const appraisal = appraiseTpmEvidence(evidence, reportData, entry.node, this.mbMemo);
      if (!appraisal.ok) {
        // Refused by policies compiled earlier: refuse only if they are still the stored ones.
        const changed: CompiledNodeEntry | undefined = fresh ? undefined : await this.changedNode(agentId, entry.digest);
        if (changed !== undefined) {
          [entry, fresh] = [changed, true];
          continue;
        }
        this.options.log.info({ agentId, reasons: appraisal.reasons }, 'kbs attestation refused');
        throw new KbsError('AttestationError', `evidence refused: ${appraisal.reasons.map((r) => r.split(':')[0]).join(', ')}`);
      }
      const nowMs = this.now();
      const outcome = await this.options.repository.claimAttestedSession({
        id: session.id,
        nonce: session.nonce,
        expiresAt: session.expiresAt,
        attested: { agentId, teePubkey: JSON.stringify(teeKey.jwk), at: nowMs },
        sessionIssuedAt: session.issuedAt,
        nodeDigest: entry.digest,
      });
      if (outcome.claimed || outcome.sessionUsed) {
        this.usedSessions.remember(session.id);
      }
      if (outcome.claimed) {
        this.options.log.info({ agentId }, 'kbs attestation passed');
        return this.options.issuer.issue({
          agentId,
          akTpm: entry.node.record.akTpm,
          teePubkey: teeKey.jwk,
          vector: appraisal.vector,
          pcrs: appraisal.pcrs,
          reportData: Buffer.from(reportData).toString('base64'),
          now: Math.floor(nowMs / 1000),
        });
      }
      // Not claimed: say why, from what the claiming statement read.
      if (outcome.sessionUsed) {
        throw new KbsError('AttestationError', ALREADY_ATTESTED);
      }
      // A session begun before a reinstatement stays refused, as a token issued before it.
      const refusal = revocationRefusal(outcome.revocation, session.issuedAt, 'milliseconds');
      if (refusal !== undefined) {
        throw new KbsError('AttestationError', `node ${agentId} ${refusal}`);
      }
      if (outcome.nodeDigest === undefined) {
        this.nodes.forget(agentId);
        throw new KbsError('AttestationError', `node ${agentId} is not known to this broker`);
      }
      if (outcome.nodeDigest === entry.digest) {
        // Every condition held, yet another attempt on this session inserted first.
        this.usedSessions.remember(session.id);
        throw new KbsError('AttestationError', ALREADY_ATTESTED);
      }
      if (fresh) {
        throw new KbsError('AttestationError', `node ${agentId} changed during this attestation: attest again`);
      }
      [entry, fresh] = [await this.loadNode(agentId), true];
    }
  }

  /** The session a cookie names, refused with `type` when there is none or it does not open. */
  private openSession(cookie: string | undefined, type: 'AttestationError' | 'TokenVerifierError'): OpenedSession {
    if (cookie === undefined) {
      throw new KbsError(type, 'no valid session: POST /auth first');
    }
    const opened = this.options.cookies.open(cookie, this.now());
    if (!opened.ok) {
      throw new KbsError(type, opened.reason);
    }
    return opened.session;
  }

  /** Reads the node's stored record and compiles it (replacing what was compiled here before); an unknown node is refused. */
  private async loadNode(agentId: string): Promise<CompiledNodeEntry> {
    const record = (await this.options.repository.findNode(agentId)) ?? this.unknownNode(agentId);
    return this.nodes.compile(record, record.digest);
  }

  /**
   * The node compiled afresh when its stored digest is not `digest`, else undefined. Only the digest is
   * read first: evidence refused by unchanged policies (any session holder can send such) does not
   * read the node's policies back.
   */
  private async changedNode(agentId: string, digest: string | null): Promise<CompiledNodeEntry | undefined> {
    const stored = await this.options.repository.nodeDigest(agentId);
    if (stored === undefined) this.unknownNode(agentId);
    return stored === digest ? undefined : this.loadNode(agentId);
  }

  /** Forgets a node no longer stored, and refuses it. */
  private unknownNode(agentId: string): never {
    this.nodes.forget(agentId);
    throw new KbsError('AttestationError', `node ${agentId} is not known to this broker`);
  }

  /**
   * A resource as a JWE to the requester's tee-pubkey. A bearer token is checked first (trusted issuer,
   * ES256, times, affirming); else the session cookie must name an attested, unexpired session. Then,
   * read in one database round trip: the node must not be revoked, nor its credential older than its
   * reinstatement (`revocationRefusal`); the resource must exist and its policy allow the node; with
   * `verifier_standing`, the verifier must trust the node now by the same AK (`StandingCheck`).
   */
  async resource(path: ResourcePath, credentials: ResourceCredentials): Promise<ResourceJwe> {
    const requester = await this.requester(path, credentials);
    const facts = requester.facts;
    const refusal = revocationRefusal(facts.revocation, requester.issuedAtMs, requester.via === 'session' ? 'milliseconds' : 'seconds');
    if (refusal !== undefined) {
      throw new KbsError('TokenVerifierError', `node ${requester.agentId} ${refusal}`);
    }
    if (facts.resource === undefined) {
      throw new KbsError('PluginNotFound', 'no such resource');
    }
    const policy = facts.resource.policy;
    const decision = decideResourceAccess(policy, { agentId: requester.agentId, groups: facts.groups, via: requester.via });
    if (!decision.allowed) {
      throw new KbsError('PolicyDeny', decision.reason);
    }
    if (policy.verifier_standing === true) {
      const standing = await (this.options.standing ?? NO_VERIFIER).refusal(requester.agentId, facts.akTpm ?? requester.akTpm);
      if (standing !== undefined) {
        throw new KbsError('PolicyDeny', `node ${requester.agentId} is not in good standing: ${standing}`);
      }
    }
    const plaintext = this.options.vault.open(path, facts.resource.sealed);
    return encryptResource(plaintext, requester.teeKey);
  }

  /**
   * Who asks, and the facts about its node and the resource, in one database round trip: a bearer token
   * is checked first (trusted issuer, ES256, times, affirming) and, when this broker has an AK for the
   * node, its `ak_tpm` must be that AK (a token minted before the node was enrolled again with another
   * AK is refused); else the session cookie must name an attested, unexpired session.
   */
  private async requester(
    path: ResourcePath,
    credentials: ResourceCredentials,
  ): Promise<{ agentId: string; teeKey: TeePublicKey; via: 'session' | 'token'; issuedAtMs: number; akTpm: string | null; facts: AccessFacts }> {
    const repository = this.options.repository;
    if (credentials.bearer !== undefined) {
      const token = await this.options.tokens.verify(credentials.bearer, this.now() / 1000);
      const facts = await repository.tokenAccessFacts(path, token.agentId);
      if (facts.akTpm !== null && !sameAk(token.akTpm, facts.akTpm)) {
        throw new KbsError('TokenVerifierError', `token was not issued for node ${token.agentId}'s registered AK: attest again`);
      }
      return { agentId: token.agentId, teeKey: token.teeKey, via: 'token', issuedAtMs: token.issuedAt * 1000, akTpm: token.akTpm, facts };
    }
    if (credentials.cookie !== undefined) {
      const opened = this.openSession(credentials.cookie, 'TokenVerifierError');
      const facts = await repository.sessionAccessFacts(path, opened.id);
      const session = facts.session;
      if (session === undefined || session.attested === null) {
        throw new KbsError('TokenVerifierError', 'the session is not attested');
      }
      const teeKey = await this.teeKeys.parseText(session.attested.teePubkey);
      return { agentId: session.attested.agentId, teeKey, via: 'session', issuedAtMs: session.attested.at, akTpm: null, facts };
    }
    throw new KbsError('TokenNotFound', 'send the session cookie or an Authorization: Bearer token');
  }

  /**
   * Stores a node after compiling its AK and policies (a malformed one is refused, nothing stored),
   * and keeps what was compiled for the node's next attest in this worker: validating is most of
   * compiling (the parsers check every field, compile the exclude regexes and load the keyrings), and
   * keeping the result saves that attest reading the row back and compiling it again.
   */
  async putNode(record: BrokerNodeRecord): Promise<void> {
    let node: CompiledNode;
    try {
      node = compileNode(record);
    } catch (error) {
      if (error instanceof IronlimeError) {
        throw new KbsError('SerdeError', `node ${record.agentId}: ${error.message}`);
      }
      throw error;
    }
    const digest = nodeDigest(record);
    await this.options.repository.putNode(record, digest);
    this.nodes.keep({ digest, node });
  }

  async deleteNode(agentId: string): Promise<boolean> {
    this.nodes.forget(agentId);
    return this.options.repository.deleteNode(agentId);
  }

  async putResource(path: ResourcePath, data: Uint8Array, policy: ResourcePolicy): Promise<void> {
    await this.options.repository.putResource({ path, sealed: this.options.vault.seal(path, data), policy });
  }

  deleteResource(path: ResourcePath): Promise<boolean> {
    return this.options.repository.deleteResource(path);
  }

  /**
   * Withdraws a node at once: its revocation is recorded, and every later resource request by its
   * sessions or tokens is refused (every request reads the row, nothing is cached) and it cannot attest
   * again until reinstated. Its session rows stay until swept: they keep the sessions' nonces used.
   * Idempotent.
   */
  async revoke(agentId: string, reason: string): Promise<void> {
    await this.options.repository.revoke(agentId, Math.floor(this.now() / 1000), reason);
    this.options.log.warn({ agentId, reason }, 'node revoked: its sessions and tokens no longer release resources');
  }

  /**
   * Ends a revocation: the node may attest again. Sessions and tokens issued before now stay refused
   * (`revocationRefusal`). False when the node was not revoked.
   */
  reinstate(agentId: string): Promise<boolean> {
    return this.options.repository.reinstate(agentId, this.now());
  }

  /**
   * Deletes session rows expired for longer than `SESSION_SWEEP_GRACE_MS`; run periodically by every
   * worker. The grace keeps a row (the nonce's single use) while any worker whose clock lags could
   * still accept its cookie.
   */
  sweepSessions(): Promise<number> {
    return this.options.repository.deleteExpiredSessions(this.now() - SESSION_SWEEP_GRACE_MS);
  }
}

/** Whether a token's `ak_tpm` (absent: null) is the stored AK: the same TPM2B_PUBLIC bytes. */
function sameAk(tokenAk: string | null, storedAk: string): boolean {
  return tokenAk !== null && bytesEqual(Buffer.from(tokenAk, 'base64'), Buffer.from(storedAk, 'base64'));
}
