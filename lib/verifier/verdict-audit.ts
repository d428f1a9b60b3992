import { appendAuditEvents } from '../audit/audit-batch.js';
import type { HistoryRow } from '../attestation/history-row.js';
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
        details: verdictDetails(write, history),
      });
    }
    await appendAuditEvents(statements, events, key);
  };
}

/**
 * The record's details as JSON would carry them: a failure context holding NaN or undefined must not
 * stop the batch (`canonicalJson` refuses them), so the failures go through JSON first. A pass has
 * none, and its other fields are strings and counts: only the counts are checked, which spares most
 * verdicts that round trip.
 */
function verdictDetails(write: RoundWrite, history: HistoryRow): Record<string, unknown> {
  const judged = { outcome: history.outcome, operational_state: jsonNumber(write.state.operationalState), attestation_count: jsonNumber(write.state.attestationCount), nonce: history.nonce };
  if (history.failures.length === 0) return { ...judged, event_ids: [], failures: [] };
  const failures = JSON.parse(JSON.stringify({ event_ids: history.failures.map((failure) => failure.event_id), failures: history.failures })) as Record<string, unknown>;
  return { ...judged, ...failures };
}

/** `value`, or null where JSON writes null (NaN, Infinity). */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
