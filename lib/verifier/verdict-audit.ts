import { LockedAuditStreams, type AuditHeads } from '../audit/audit-batch.js';
import type { HistoryRow } from '../attestation/history-row.js';
import { boundedFailure, distinctEventIds, MAX_STORED_FAILURES } from '../attestation/stored-failures.js';
import type { AuditEvent } from '../audit/audit-record.js';
import type { AuditSigningKey } from '../audit/audit-signing-key.js';
import { VERIFIER_AUDIT_TABLES } from '../audit/audit-tables.js';
import type { Statements } from '../db/fixed-statement.js';
import type { RoundWrite } from './round-writer.js';

/**
 * Who signs the pull verdicts' audit records (`RoundWriterOptions.audit`): every decided round (pass
 * or fail; not the `retry` of an agent that did not answer) becomes a `verdict` record in the agent's
 * audit stream, signed with `key` as `verifier:actor`, in the transaction that stores the verdict itself.
 */
export interface VerdictAudit {
  readonly key: AuditSigningKey;
  readonly actor: string;
}

/**
 * Inserts the verdict records of the `stored` writes (`verdictEvents`), chained after `heads`, which
 * the batch's rounds statement locked (`saveAuditedRounds`), through `run` (that transaction): one
 * statement and one signature, none when no write gets a record.
 */
export async function insertVerdictRecords(run: Statements, stored: readonly RoundWrite[], heads: AuditHeads, audit: VerdictAudit): Promise<void> {
  await new LockedAuditStreams(run, heads, audit.key, VERIFIER_AUDIT_TABLES).insert(verdictEvents(stored, audit.actor));
}

/** Whether `write` gets a verdict record: it decided its round (a pass or a fail, not a `retry`). */
export function auditedVerdict(write: RoundWrite): boolean {
  return write.history !== undefined && write.history.outcome !== 'retry';
}

/** The verdict records of the `stored` writes that get one (`auditedVerdict`), by verifier `actor`, dated now. */
export function verdictEvents(stored: readonly RoundWrite[], actor: string): AuditEvent[] {
  const at = new Date().toISOString();
  const events: AuditEvent[] = [];
  for (const write of stored) {
    const history = write.history;
    if (history === undefined || !auditedVerdict(write)) continue;
    events.push({
      stream: write.agentId,
      at,
      actor: `verifier:${actor}`,
      action: 'verdict',
      agentId: write.agentId,
      details: verdictDetails(write, history),
    });
  }
  return events;
}

/** Failures a verdict's record holds: those its history row keeps (`MAX_STORED_FAILURES`), the rest only counted (`failures_omitted`). */
export const MAX_AUDITED_FAILURES = MAX_STORED_FAILURES;

/**
 * The record's details as JSON would carry them: a failure context holding NaN or undefined must not
 * stop the batch (`canonicalJson` refuses them), so the failures go through JSON first. A pass has
 * none, and its other fields are strings and counts: only the counts are checked, which spares most
 * verdicts that round trip. The failures are bounded (`MAX_AUDITED_FAILURES` of at most about
 * `MAX_STORED_FAILURE_BYTES` each), so every record fits an export line (`MAX_AUDIT_LINE_BYTES`).
 * A history row built by the engine is already bounded (`storedFailures`); one that is not is bounded here.
 */
export function verdictDetails(write: RoundWrite, history: HistoryRow): Record<string, unknown> {
  const operationalState = jsonNumber(write.state.operationalState);
  const attestationCount = jsonNumber(write.state.attestationCount);
  if (history.failures.length === 0) {
    // Written out, not spread from `judged`: most verdicts are passes (the same members, in the same order).
    return { outcome: history.outcome, operational_state: operationalState, attestation_count: attestationCount, nonce: history.nonce, event_ids: [], failures: [] };
  }
  const judged = { outcome: history.outcome, operational_state: operationalState, attestation_count: attestationCount, nonce: history.nonce };
  const failures = history.failures.slice(0, MAX_AUDITED_FAILURES).map(boundedFailure);
  const omitted = history.failures.slice(MAX_AUDITED_FAILURES);
  const omittedCount = omitted.length + (history.failuresOmitted ?? 0);
  const kept = { ...judged, event_ids: failures.map((failure) => failure.event_id), failures };
  if (omittedCount === 0) return kept;
  return { ...kept, failures_omitted: omittedCount, omitted_event_ids: distinctEventIds([...omitted.map((failure) => failure.event_id), ...(history.omittedEventIds ?? [])]) };
}

/** `value`, or null where JSON writes null (NaN, Infinity). */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
