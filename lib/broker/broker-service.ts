import { randomBytes } from 'node:crypto';
import type { ResourceJwe } from './resource-jwe.js';
import type { Logger } from 'pino';
import { IronlimeError } from '../../interfaces/errors.js';
import { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { CompiledNodeCache, compileNode, nodeDigest, type BrokerNodeRecord, type CompiledNode } from './broker-node.js';
import type { AccessFacts, BrokerRepository } from './broker-repository.js';
import type { EarTokenIssuer } from './ear-token.js';
import type { EarTokenVerifier } from './ear-token-verifier.js';
import { KbsError } from './kbs-errors.js';
import { KBS_PROTOCOL_VERSION, NONCE_BYTES, REPORT_DATA_HASH, reportDataOf, TEE_TPM, type ResourcePath, type RuntimeData } from './kbs-wire.js';
import { encryptResource } from './resource-jwe.js';
import { decideResourceAccess, type ResourcePolicy } from './resource-policy.js';
import type { ResourceVault } from './resource-vault.js';
import { parseTeePublicKey, type TeePublicKey } from './tee-public-key.js';
import { appraiseTpmEvidence, type UntrustedTpmEvidence } from './tpm-evidence.js';
import { bytesEqual } from '../bytes/bytes-equal.js';
import { revocationRefusal } from './revocation-state.js';
import { NO_VERIFIER, type StandingCheck } from './verifier-standing.js';

export interface BrokerServiceOptions {
  readonly repository: BrokerRepository;
  readonly vault: ResourceVault;
  readonly issuer: EarTokenIssuer;
  readonly tokens: EarTokenVerifier;
  readonly sessionTimeoutSeconds: number;
  readonly log: Logger;
  /** The good-standing rule's check (`verifier_standing` resources); default: no verifier, refused. */
  readonly standing?: StandingCheck;
  /** Unix milliseconds; tests pass a fixed clock. */
  readonly now?: () => number;
}

/** `/auth` answer: the session id for the cookie and the Challenge body. */
export interface AuthOutcome {
  readonly sessionId: string;
  readonly challenge: { readonly nonce: string; readonly 'extra-params': Readonly<Record<string, unknown>> };
}

/** How a resource request authenticated: the session cookie, a bearer token, or neither. */
export interface ResourceCredentials {
  readonly sessionId: string | undefined;
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
  private readonly now: () => number;

  constructor(private readonly options: BrokerServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Request → Challenge: protocol 0.4.0 and tee `tpm` only; a fresh 32-byte nonce in a new session. */
  async auth(request: { version: string; tee: string }): Promise<AuthOutcome> {
    if (request.version !== KBS_PROTOCOL_VERSION) {
      throw new KbsError('ProtocolVersion', `protocol version ${request.version} is not supported (need ${KBS_PROTOCOL_VERSION})`);
    }
    if (request.tee !== TEE_TPM) {
      throw new KbsError('AttestationError', `tee ${request.tee} is not supported (only ${TEE_TPM})`);
    }
    const sessionId = randomBytes(24).toString('base64url');
    const nonce = randomBytes(NONCE_BYTES).toString('base64');
    await this.options.repository.insertSession({
      id: sessionId,
      nonce,
      tee: request.tee,
      expiresAt: this.now() + this.options.sessionTimeoutSeconds * 1000,
    });
    return { sessionId, challenge: { nonce, 'extra-params': { 'selected-hash-algorithm': REPORT_DATA_HASH } } };
  }

  /**
   * Attestation → token. The session must exist, be unexpired and not yet attested; `runtime-data.nonce`
   * must be its nonce; the node must be known, not revoked, and its evidence must pass
   * `appraiseTpmEvidence` over H(JCS(runtime-data)). A failed attempt burns the session.
   */
  async attest(sessionId: string | undefined, runtimeData: RuntimeData, evidence: UntrustedTpmEvidence): Promise<string> {
    const repository = this.options.repository;
    // One statement: the session, the claimed node's revocation and its policy digest.
    const facts = await repository.attestFacts(sessionId ?? '', evidence.agent_id);
    const session = facts.session;
    if (session === undefined || session.expiresAt <= this.now()) {
      throw new KbsError('AttestationError', 'no valid session: POST /auth first');
    }
    if (session.attested !== null) {
      throw new KbsError('AttestationError', 'this session has already attested');
    }
    try {
      return await this.appraise(session.id, session.nonce, runtimeData, evidence, facts);
    } catch (error) {
      await repository.deleteSession(session.id);
      throw error;
    }
  }

  private async appraise(
    sessionId: string,
    nonce: string,
    runtimeData: RuntimeData,
    evidence: UntrustedTpmEvidence,
    facts: { readonly revocation: AccessFacts['revocation']; readonly nodeDigest: string | null | undefined },
  ): Promise<string> {
    const repository = this.options.repository;
    if (!bytesEqual(Buffer.from(runtimeData.nonce, 'utf8'), Buffer.from(nonce, 'utf8'))) {
      throw new KbsError('AttestationError', 'runtime-data nonce is not this session\'s nonce');
    }
    const teeKey = parseTeePublicKey(runtimeData['tee-pubkey']);
    const agentId = evidence.agent_id;
    if (facts.revocation !== undefined && facts.revocation.reinstatedAt === null) {
      throw new KbsError('AttestationError', `node ${agentId} is revoked`);
    }
    const node = await this.compiledNode(agentId, facts.nodeDigest);
    const reportData = reportDataOf(runtimeData);
    const appraisal = appraiseTpmEvidence(evidence, reportData, node, this.mbMemo);
    if (!appraisal.ok) {
      this.options.log.info({ agentId, reasons: appraisal.reasons }, 'kbs attestation refused');
      throw new KbsError('AttestationError', `evidence refused: ${appraisal.reasons.map((r) => r.split(':')[0]).join(', ')}`);
    }
    const nowMs = this.now();
    if (!(await repository.markAttested(sessionId, agentId, JSON.stringify(teeKey.jwk), nowMs))) {
      throw new KbsError('AttestationError', 'this session has already attested');
    }
    this.options.log.info({ agentId }, 'kbs attestation passed');
    return this.options.issuer.issue({
      agentId,
      akTpm: node.record.akTpm,
      teePubkey: teeKey.jwk,
      vector: appraisal.vector,
      pcrs: appraisal.pcrs,
      reportData: Buffer.from(reportData).toString('base64'),
      now: Math.floor(nowMs / 1000),
    });
  }

  /** The node's compiled policies: from the cache when the stored digest is unchanged, else read and compiled. */
  private async compiledNode(agentId: string, digest: string | null | undefined): Promise<CompiledNode> {
    const cached = digest === undefined || digest === null ? undefined : this.nodes.lookup(agentId, digest);
    if (cached !== undefined) {
      return cached;
    }
    const record = digest === undefined ? undefined : await this.options.repository.findNode(agentId);
    if (record === undefined) {
      throw new KbsError('AttestationError', `node ${agentId} is not known to this broker`);
    }
    return this.nodes.compile(record, record.digest);
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
    const refusal = revocationRefusal(facts.revocation, requester.issuedAtMs);
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
   * is checked first (trusted issuer, ES256, times, affirming); else the session cookie must name an
   * attested, unexpired session.
   */
  private async requester(
    path: ResourcePath,
    credentials: ResourceCredentials,
  ): Promise<{ agentId: string; teeKey: TeePublicKey; via: 'session' | 'token'; issuedAtMs: number; akTpm: string | null; facts: AccessFacts }> {
    const repository = this.options.repository;
    if (credentials.bearer !== undefined) {
      const token = await this.options.tokens.verify(credentials.bearer, this.now() / 1000);
      const facts = await repository.tokenAccessFacts(path, token.agentId);
      return { agentId: token.agentId, teeKey: token.teeKey, via: 'token', issuedAtMs: token.issuedAt * 1000, akTpm: token.akTpm, facts };
    }
    if (credentials.sessionId !== undefined) {
      const facts = await repository.sessionAccessFacts(path, credentials.sessionId);
      const session = facts.session;
      if (session === undefined || session.attested === null || session.expiresAt <= this.now()) {
        throw new KbsError('TokenVerifierError', 'the session is not attested or has expired');
      }
      const teeKey = parseTeePublicKey(JSON.parse(session.attested.teePubkey));
      return { agentId: session.attested.agentId, teeKey, via: 'session', issuedAtMs: session.attested.at, akTpm: null, facts };
    }
    throw new KbsError('TokenNotFound', 'send the session cookie or an Authorization: Bearer token');
  }

  /** Stores a node after compiling its AK and policies (a malformed one is refused, nothing stored). */
  async putNode(record: BrokerNodeRecord): Promise<void> {
    try {
      compileNode(record);
    } catch (error) {
      if (error instanceof IronlimeError) {
        throw new KbsError('SerdeError', `node ${record.agentId}: ${error.message}`);
      }
      throw error;
    }
    await this.options.repository.putNode(record, nodeDigest(record));
    this.nodes.forget(record.agentId);
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
   * Withdraws a node at once: its revocation is recorded (every later resource request by its
   * sessions or tokens is refused — every request reads the row, nothing is cached — and it cannot
   * attest again until reinstated) and its sessions are deleted. Idempotent.
   */
  async revoke(agentId: string, reason: string): Promise<void> {
    await this.options.repository.revoke(agentId, Math.floor(this.now() / 1000), reason);
    await this.options.repository.deleteSessionsOf(agentId);
    this.options.log.warn({ agentId, reason }, 'node revoked: its sessions and tokens no longer release resources');
  }

  /**
   * Ends a revocation: the node may attest again. Sessions and tokens issued before now stay refused
   * (`revocationRefusal`). False when the node was not revoked.
   */
  reinstate(agentId: string): Promise<boolean> {
    return this.options.repository.reinstate(agentId, this.now());
  }

  /** Deletes expired sessions; run periodically by the server. */
  sweepSessions(): Promise<number> {
    return this.options.repository.deleteExpiredSessions(this.now());
  }
}
