import { appendAuditEvents } from '../audit/audit-batch.js';
import type { AuditEvent } from '../audit/audit-record.js';
import type { AuditSigningKey } from '../audit/audit-signing-key.js';
import type { Statements } from '../db/fixed-statement.js';
import type { RoundWrite } from './round-writer.js';

/**
 * The round writer's `alsoStore`: every decided round (pass or fail; not the `retry` of an agent
 * that did not answer) becomes a `verdict` record in the agent's audit stream, signed by this
 * verifier, in the transaction that stores the verdict itself.
 */
export function auditVerdicts(key: AuditSigningKey, actor: string): (statements: Statements, stored: readonly RoundWrite[]) => Promise<void> {
  return async (statements, stored) => {
    const at = new Date().toISOString();
    const events: AuditEvent[] = [];
    for (const write of stored) {
      const history = write.history;
      if (history === undefined || history.outcome === 'retry') continue;
      events.push({
        stream: write.agentId,
        at,
        actor: `verifier:${actor}`,
        action: 'verdict',
        agentId: write.agentId,
        // Through JSON first: a failure context holding NaN or undefined must not stop the batch.
        details: JSON.parse(
          JSON.stringify({
            outcome: history.outcome,
            operational_state: write.state.operationalState,
            attestation_count: write.state.attestationCount,
            nonce: history.nonce,
            event_ids: history.failures.map((failure) => failure.event_id),
            failures: history.failures,
          }),
        ) as Record<string, unknown>,
      });
    }
    await appendAuditEvents(statements, events, key);
  };
}
