import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RevocationMessage } from '../revocation/revocation-message.js';
import { storableText } from '../db/storable-text.js';
import { AGENT_ID_MAX_LENGTH } from '../http/validators.js';
import { auditedText, brokerAuditEvent, IN_PROCESS_ACTOR, VERIFIER_MESSAGE_ACTOR } from './broker-audit.js';
import type { BrokerRepository } from './broker-repository.js';
import { KbsError } from './kbs-errors.js';
import { waitUntil, type Reinstatement } from './revocation-store.js';

/**
 * The broker's revocations: a node revoked by an administrator, by a verifier's signed message or by
 * the provisioning tie-in after a failed deploy, and reinstated. Every resource request reads the
 * revocation row (`broker-statements.ts`), so each change here holds at once in every worker.
 * Each revocation and reinstatement is appended to the audit log with it (`BrokerRepository.recorded`).
 */
export class BrokerRevocations {
  constructor(
    private readonly repository: BrokerRepository,
    private readonly log: Logger,
    /** Unix milliseconds. */
    private readonly now: () => number,
  ) {}

  /**
   * Withdraws a node at once: its revocation is recorded, and every later resource request by its
   * sessions or tokens is refused (every request reads the row, nothing is cached) and it cannot attest
   * again until reinstated. Its session rows stay until swept: they keep the sessions' nonces used.
   * Idempotent.
   */
  async revoke(agentId: string, reason: string, actor = IN_PROCESS_ACTOR): Promise<void> {
    const at = this.now();
    await this.repository.recordedWithdrawal(
      (rows) => rows.revocations.revoke(agentId, Math.floor(at / 1000), storableText(reason)),
      () => brokerAuditEvent({ actor, action: 'node.revoke', agentId, details: { reason }, at }),
      this.unaudited(agentId, 'revocation'),
    );
    this.log.warn({ agentId, reason }, 'node revoked: its sessions and tokens no longer release resources');
  }

  /**
   * A verifier's signed revocation message (its signature checked by the caller): revokes as `revoke`,
   * the first time this message is seen for the node (`revokeOnce`, by its SHA-256). The same message
   * again — a replay, or a delivery retried past a reinstatement — is ignored; any other message
   * revokes, whatever its `event_time` (no clocks compared: a verifier behind the broker's clock, or
   * in another time zone, must not have a genuine failure ignored). `comm_error` messages do not revoke.
   * True when the node was revoked. @throws KbsError `SerdeError` for a message whose agent id cannot be
   * stored (longer than any this broker holds, or with a NUL, which PostgreSQL text refuses).
   */
  async revokeByMessage(message: RevocationMessage): Promise<boolean> {
    if (message.type !== 'revocation') {
      return false;
    }
    if (message.agent_id.length > AGENT_ID_MAX_LENGTH || message.agent_id.includes('\u0000')) {
      // Refused for good (a 4xx the verifier's outbox does not retry), as retrying could never store it.
      // Nothing is left trusted: no node has such an id, no policy lists one that long, and a token naming
      // one with a NUL fails its own reads (500).
      throw new KbsError('SerdeError', `a revocation message whose agent_id is over ${AGENT_ID_MAX_LENGTH} characters or holds a NUL cannot be stored`);
    }
    const reason = storableText(`verifier: ${message.event_id}`);
    const digest = createHash('sha256').update(JSON.stringify(message)).digest('hex');
    const at = this.now();
    const revoked = await this.repository.recordedWithdrawal(
      (rows) => rows.revocations.revokeOnce(message.agent_id, Math.floor(at / 1000), reason, digest),
      (recorded) =>
        recorded
          ? brokerAuditEvent({
              actor: VERIFIER_MESSAGE_ACTOR,
              action: 'node.revoke',
              agentId: message.agent_id,
              details: { reason: auditedText(reason), event_id: auditedText(message.event_id), event_time: auditedText(message.event_time), message_sha256: digest },
              at,
            })
          : undefined,
      this.unaudited(message.agent_id, 'revocation'),
    );
    const fields = { agentId: message.agent_id, reason, eventTime: message.event_time };
    this.log.warn(fields, revoked ? 'node revoked by the verifier' : 'revocation message applied before (a replay or a retried delivery): ignored');
    return revoked;
  }

  /**
   * Ends the revocation in force when it began, or only the one of `expectedVersion` (one recorded
   * meanwhile stays: `RevocationStore.recordReinstatement`): the node may attest again. Sessions and tokens
   * issued before now stay refused (`revocationRefusal`).
   */
  async reinstate(agentId: string, expectedVersion?: string, actor = IN_PROCESS_ACTOR): Promise<Reinstatement> {
    const { outcome, answerAt } = await this.repository.recorded(
      (rows) => rows.revocations.recordReinstatement(agentId, this.now, expectedVersion),
      (recorded) =>
        recorded.outcome === 'reinstated'
          ? brokerAuditEvent({ actor, action: 'node.reinstate', agentId, details: expectedVersion === undefined ? {} : { version: expectedVersion }, at: this.now() })
          : undefined,
    );
    // After the commit: the transaction (and PGlite's one connection) is not held for up to a second.
    await waitUntil(answerAt, this.now);
    return outcome;
  }

  /** Logs, at error, a withdrawal applied without its audit record (`BrokerRepository.recordedWithdrawal`). */
  unaudited(agentId: string | null, what: string): (error: unknown) => void {
    return (error) => this.log.error({ err: error, agentId }, `${what} applied but not audited: its record could not be stored`);
  }

  /** The version of the node's revocation in force, null when none is (`RevocationStore.versionInForce`). */
  revocationInForce(agentId: string): Promise<string | null> {
    return this.repository.revocations.versionInForce(agentId);
  }
}
