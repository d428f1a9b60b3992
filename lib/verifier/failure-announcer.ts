import type { AgentAttestationState } from '../attestation/agent-state.js';
import type { HistoryRow } from '../attestation/history-row.js';
import { REVOKED_STATES, type OperationalState } from '../attestation/operational-state.js';
import type { RevocationAgentTarget } from '../revocation/revocation-notice.js';
import type { PreparedRevocation, RevocationNotifier } from '../revocation/revocation-notifier.js';
import type { VerifierAgentEnrolment } from './verifier-agent-record.js';

/** Whether a verdict moves an agent from `before` into a failed state: the transition that is announced, and stored at once. */
export function turnsRevoked(before: OperationalState, after: OperationalState): boolean {
  return !REVOKED_STATES.includes(before) && REVOKED_STATES.includes(after);
}

/** Failures the verifier raises itself (silence, no quote, an exception): not evidence of tampering. */
const COMM_ERROR_PREFIX = 'internal.verifier.';

/**
 * Keylime's revocation message for an agent whose verdict turned it FAILED or INVALID_QUOTE, sent
 * once that verdict is stored: to the webhooks (a broker withdraws the node's secrets and tokens) and
 * to the agents of the same tenant this process polls. Pull rounds and push verdicts both announce through it, so a
 * tampered push node is withdrawn like a pull node.
 */
export class FailureAnnouncer {
  constructor(
    private readonly notifier: RevocationNotifier | undefined,
    /** The agents to notify besides the webhooks, listed later, off the verdict's path. */
    private readonly otherAgents: () => Iterable<RevocationAgentTarget>,
  ) {}

  /**
   * The notice of the verdict, prepared (signed) before it is stored so that the verdict's transaction
   * records it (`RoundWrite.revocation`), if the verdict moves `agent` into a failed state from
   * `before`, the state it was decided from, when that was not failed; undefined otherwise (no cost
   * for a pass). Silence (no failure event a check raised) is `comm_error`, which brokers and agents do
   * not treat as tampering.
   */
  prepare(agent: VerifierAgentEnrolment, before: OperationalState, after: AgentAttestationState, history: HistoryRow | undefined): PreparedRevocation | undefined {
    if (this.notifier === undefined || !turnsRevoked(before, after.operationalState)) return undefined;
    const failure = history?.failures[0];
    return this.notifier.prepare({
      agentId: agent.agentId,
      ip: agent.ip,
      port: agent.port,
      tpmPolicy: agent.tpmPolicy,
      metaData: agent.metaData,
      revocationKey: agent.revocationKey,
      type: failure === undefined || failure.event_id.startsWith(COMM_ERROR_PREFIX) ? 'comm_error' : 'revocation',
      eventId: failure?.event_id ?? after.lastEventId ?? 'unknown',
      severityLabel: failure?.severity_label ?? 'unknown',
      context: failure?.context ?? null,
      ...(agent.tenant === undefined ? {} : { tenant: agent.tenant }),
      otherAgents: this.otherAgents,
    });
  }

  /**
   * Announces a prepared failure once its verdict is stored. Returns at once: deliveries never hold up
   * a round or a reply. A transition two processes may decide at once (push silence) is written on
   * condition of the row read (`RoundWrite.expectedVersion`), so it is stored, and announced, once.
   */
  stored(prepared: PreparedRevocation | undefined): void {
    if (prepared !== undefined) this.notifier?.announce(prepared);
  }
}
