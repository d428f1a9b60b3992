import { appendAuditEvents } from '../audit/audit-batch.js';
import type { HistoryRow, StoredFailure } from '../attestation/history-row.js';
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
 * Failures a verdict's record holds: the round's first ones, the rest only counted (`failures_omitted`).
 * An agent can make one failure per IMA line; the round's history row keeps them all.
 */
export const MAX_AUDITED_FAILURES = 100;
/** A failure longer than this as JSON keeps the start of its context's JSON (`CONTEXT_START_CHARS`) and its length. */
export const MAX_AUDITED_FAILURE_BYTES = 4096;
const CONTEXT_START_CHARS = 1024;

/**
 * The record's details as JSON would carry them: a failure context holding NaN or undefined must not
 * stop the batch (`canonicalJson` refuses them), so the failures go through JSON first. A pass has
 * none, and its other fields are strings and counts: only the counts are checked, which spares most
 * verdicts that round trip. The failures are bounded (`MAX_AUDITED_FAILURES` of at most about
 * `MAX_AUDITED_FAILURE_BYTES` each), so every record fits an export line (`MAX_AUDIT_LINE_BYTES`).
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
  const kept = { ...judged, event_ids: failures.map((failure) => failure.event_id), failures };
  return omitted.length === 0 ? kept : { ...kept, failures_omitted: omitted.length, omitted_event_ids: omittedEventIds(omitted) };
}

/**
 * The distinct event ids of the failures left out, in order of first appearance (at most
 * `MAX_AUDITED_FAILURES` of them): IMA failures come first in a round, so without this a measured boot
 * or PCR failure after a padded IMA list would not be named in the signed record at all.
 */
function omittedEventIds(omitted: readonly StoredFailure[]): string[] {
  return [...new Set(omitted.map((failure) => failure.event_id))].slice(0, MAX_AUDITED_FAILURES);
}

/** `failure` through JSON; when longer than `MAX_AUDITED_FAILURE_BYTES`, its context becomes the start of its JSON text and that text's length. */
function boundedFailure(failure: StoredFailure): StoredFailure {
  const json = JSON.stringify(failure);
  if (Buffer.byteLength(json) <= MAX_AUDITED_FAILURE_BYTES) return JSON.parse(json) as StoredFailure;
  const context = JSON.stringify(failure.context);
  return {
    event_id: failure.event_id,
    severity_label: failure.severity_label,
    recoverable: failure.recoverable,
    context: { truncated: wholeCharacters(context.slice(0, CONTEXT_START_CHARS)), bytes: Buffer.byteLength(context) },
  };
}

/**
 * `text` without a high surrogate at its end, left there by cutting a character outside the BMP in
 * two: a lone surrogate is no Unicode text (PostgreSQL's jsonb refuses its escape, UTF-8 tools replace it).
 */
function wholeCharacters(text: string): string {
  const last = text.charCodeAt(text.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, -1) : text;
}

/** `value`, or null where JSON writes null (NaN, Infinity). */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
