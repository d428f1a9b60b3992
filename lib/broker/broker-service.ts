import type { Logger } from 'pino';
import { IronlimeError } from '../../interfaces/errors.js';
import { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { auditedList, brokerAuditEvent, IN_PROCESS_ACTOR } from './broker-audit.js';
import { attestAuditEvent, resourceName } from './grant-audit.js';
import { CompiledNodeCache, compileNode, nodeDigest, type BrokerNodeRecord, type CompiledNode, type CompiledNodeEntry } from './broker-node.js';
import type { BrokerRepository, ClaimOutcome, PendingClaim } from './broker-repository.js';
import type { EarTokenIssuer } from './ear-token.js';
import { GroupCommit } from './group-commit.js';
import type { EarTokenVerifier } from './ear-token-verifier.js';
import { KbsError } from './kbs-errors.js';
import { KBS_PROTOCOL_VERSION, REPORT_DATA_HASH, reportDataOf, TEE_TPM, type ResourcePath, type RuntimeData } from './kbs-wire.js';
import type { ResourceJwe } from './resource-jwe.js';
import type { ResourcePolicy } from './resource-policy.js';
import { ResourceRelease, type ResourceCredentials } from './resource-release.js';
import type { ResourceVault } from './resource-vault.js';
import { revocationRefusal } from './revocation-state.js';
import { waitUntil } from './revocation-store.js';
import { BrokerRevocations } from './broker-revocations.js';
import { requireSession, type OpenedSession, type SessionCookies } from './session-cookie.js';
import { TeeKeyCache } from './tee-public-key.js';
import { appraiseTpmEvidence, type UntrustedTpmEvidence } from './tpm-evidence.js';
import { UsedSessions } from './used-sessions.js';
import type { StandingCheck } from './verifier-standing.js';

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

/** The most session claims one transaction makes. */
export const MAX_CLAIM_BATCH = 64;

/** Session rows are deleted this long after their cookie expired. */
export const SESSION_SWEEP_GRACE_MS = 10 * 60_000;

/** `/auth` answer: the session cookie's value and the Challenge body. */
export interface AuthOutcome {
  readonly cookie: string;
  readonly challenge: { readonly nonce: string; readonly 'extra-params': Readonly<Record<string, unknown>> };
}

/**
 * The broker's decisions: the RCAR handshake, appraisal of TPM evidence by the verifier's engine, token
 * issue, resource release under policy (`ResourceRelease`), revocation. The routes only move bytes to and from here. Every
 * refusal is a `KbsError`; a database fault propagates and the request fails closed (500).
 */
export class BrokerService {
  private readonly nodes = new CompiledNodeCache();
  private readonly mbMemo = new MeasuredBootMemo();
  private readonly teeKeys = new TeeKeyCache();
  private readonly usedSessions = new UsedSessions();
  /** The session claims and their records by group commit (`BrokerRepository.claimAttestedSessions`). */
  private readonly claims: GroupCommit<PendingClaim, ClaimOutcome>;
  private readonly now: () => number;
  private readonly release: ResourceRelease;
  /** Revoking and reinstating nodes (admin routes, verifiers' signed messages, the provisioning tie-in). */
  readonly revocations: BrokerRevocations;

  constructor(private readonly options: BrokerServiceOptions) {
    this.now = options.now ?? Date.now;
    // A session's claims never share a batch: the later one then finds the earlier one's row.
    this.claims = new GroupCommit((batch) => options.repository.claimAttestedSessions(batch), MAX_CLAIM_BATCH, (pending) => pending.claim.id);
    this.release = new ResourceRelease({ ...options, teeKeys: this.teeKeys, now: this.now });
    this.revocations = new BrokerRevocations(options.repository, options.log, this.now);
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
   * its stored policy digest, and inserts only if they allow it (`claimAttestedSessions`): the
   * appraisal uses the node as compiled here, and a node changed since (any worker) is compiled afresh
   * and appraised again. Rows outlive the cookie (swept only after `SESSION_SWEEP_GRACE_MS`), so an
   * expired cookie is refused by its time first. A session this worker knows to be used
   * (`UsedSessions`) is refused before the appraisal, and no second row is attempted for it.
   * The claim and its `node.attest` audit record (`attestAuditEvent`) commit in one transaction, which
   * takes the node's stream lock before the claiming statement reads: a revocation or a node change
   * committed while the claim waited for it is seen and refuses, one committed after follows the
   * record in the stream. Claims are made by group commit (`GroupCommit`, `MAX_CLAIM_BATCH`): a claim
   * arriving while a claims transaction runs waits for the next, which takes every claim queued by then
   * (never two of one session), each decided on its own conditions. An attestation the log cannot take,
   * or whose batch's transaction fails, is refused (500), its session burnt and no token handed out.
   */
  async attest(cookie: string | undefined, runtimeData: RuntimeData, evidence: UntrustedTpmEvidence, additionalEvidence: string): Promise<string> {
    const session = requireSession(this.options.cookies, cookie, this.now(), 'AttestationError');
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
      const teePubkey = JSON.stringify(teeKey.jwk);
      // Signed before the claim, so that its record names it; handed out only once both committed.
      const token = await this.options.issuer.issue({
        agentId,
        akTpm: entry.node.akTpm,
        teePubkey: teeKey.jwk,
        vector: appraisal.vector,
        pcrs: appraisal.pcrs,
        reportData: Buffer.from(reportData).toString('base64'),
        now: Math.floor(nowMs / 1000),
      });
      const digest = entry.digest;
      const outcome = await this.claims.submit({
        claim: {
          id: session.id,
          nonce: session.nonce,
          expiresAt: session.expiresAt,
          attested: { agentId, teePubkey, at: nowMs, akTpm: entry.node.akTpm, vector: appraisal.vector },
          sessionIssuedAt: session.issuedAt,
          nodeDigest: digest,
        },
        event: attestAuditEvent({ agentId, sessionId: session.id, token, nodeDigest: digest, vector: appraisal.vector, teePubkey, at: nowMs }),
      });
      if (outcome.claimed || outcome.sessionUsed) {
        this.usedSessions.remember(session.id);
      }
      if (outcome.claimed) {
        this.options.log.info({ agentId }, 'kbs attestation passed');
        return token;
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

  /**
   * Reads the node's stored record and compiles it (replacing what was compiled here before); an
   * unknown node is refused, and so is one whose stored record no longer compiles (a weak AK stored
   * before such AKs were refused: `compileNode`), naming why.
   */
  private async loadNode(agentId: string): Promise<CompiledNodeEntry> {
    const record = (await this.options.repository.findNode(agentId)) ?? this.unknownNode(agentId);
    try {
      return this.nodes.compile(record, record.digest);
    } catch (error) {
      this.nodes.forget(agentId);
      if (error instanceof IronlimeError) {
        throw new KbsError('AttestationError', `node ${agentId} as stored is not trusted: ${error.message} (store it again)`);
      }
      throw error;
    }
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

  /** A resource as a JWE to the requester's tee-pubkey: `ResourceRelease.release`. */
  resource(path: ResourcePath, credentials: ResourceCredentials): Promise<ResourceJwe> {
    return this.release.release(path, credentials);
  }

  /**
   * Stores a node after compiling its AK and policies (a malformed one is refused, nothing stored),
   * and keeps what was compiled for the node's next attest in this worker: validating is most of
   * compiling (the parsers check every field, compile the exclude regexes and load the keyrings), and
   * keeping the result saves that attest reading the row back and compiling it again.
   */
  async putNode(record: BrokerNodeRecord, actor = IN_PROCESS_ACTOR): Promise<void> {
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
    const at = this.now();
    // The digest names the AK and policy texts stored (they may be megabytes: the record keeps their hash).
    await this.options.repository.recorded(
      (rows) => rows.putNode(record, digest),
      () => brokerAuditEvent({ actor, action: 'node.put', agentId: record.agentId, details: { digest, groups: auditedList(record.groups) }, at }),
    );
    this.nodes.keep({ digest, node });
  }

  /**
   * Deletes the node; its sessions and tokens issued until now are refused from then on (`BrokerRepository.deleteNode`).
   * That cut-off is the next whole second: the answer waits for it, so a node stored again at once may attest at once.
   */
  async deleteNode(agentId: string, actor = IN_PROCESS_ACTOR): Promise<boolean> {
    this.nodes.forget(agentId);
    const at = this.now();
    const deleted = await this.options.repository.recordedWithdrawal(
      (rows) => rows.deleteNode(agentId, at),
      (deleted) => (deleted ? brokerAuditEvent({ actor, action: 'node.delete', agentId, details: {}, at }) : undefined),
      this.revocations.unaudited(agentId, 'node deletion'),
    );
    if (deleted) {
      await waitUntil((Math.floor(at / 1000) + 1) * 1000, this.now);
    }
    return deleted;
  }

  /** Stores a resource sealed (`ResourceVault`); its audit record holds its path and policy, never its data. */
  async putResource(path: ResourcePath, data: Uint8Array, policy: ResourcePolicy, actor = IN_PROCESS_ACTOR): Promise<void> {
    const sealed = this.options.vault.seal(path, data);
    const at = this.now();
    await this.options.repository.recorded(
      (rows) => rows.putResource({ path, sealed, policy }),
      () => brokerAuditEvent({ actor, action: 'resource.put', agentId: null, details: { resource: resourceName(path), policy: { ...policy, agents: auditedList(policy.agents), groups: auditedList(policy.groups) } }, at }),
    );
  }

  deleteResource(path: ResourcePath, actor = IN_PROCESS_ACTOR): Promise<boolean> {
    const at = this.now();
    return this.options.repository.recordedWithdrawal(
      (rows) => rows.deleteResource(path),
      (deleted) => (deleted ? brokerAuditEvent({ actor, action: 'resource.delete', agentId: null, details: { resource: resourceName(path) }, at }) : undefined),
      this.revocations.unaudited(null, `deletion of resource ${resourceName(path)}`),
    );
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
