import type { Failure } from './internal/failure.js';
import { storedFailure, type HistoryRow, type StoredFailure } from './history-row.js';

/**
 * Failures a round's history row keeps: the first ones, in order. An agent can make one failure per
 * IMA line (a quote reply may be 64 MiB: some 480,000 lines, 90 MiB of failures as JSON), and a failed
 * round asks for the whole list again, so without a bound every round of such an agent stored that
 * much, kept for ever (failures are not pruned), and read back by the history API and the node page.
 */
export const MAX_STORED_FAILURES = 100;
/** A failure longer than this as JSON keeps the start of its context's JSON (`CONTEXT_START_CHARS`) and its length. */
export const MAX_STORED_FAILURE_BYTES = 4096;
const CONTEXT_START_CHARS = 1024;

/** The failures part of a history row. */
export type StoredFailures = Pick<HistoryRow, 'failures' | 'failuresOmitted' | 'omittedEventIds'>;

/**
 * A round's failures as its history row keeps them: the first `MAX_STORED_FAILURES`, each bounded
 * (`boundedFailure`), and, when there are more, how many were left out and their distinct event ids.
 * Only what is stored is bounded: the verdict, severity and `last_event_id` come from every failure.
 */
export function storedFailures(failures: readonly Failure[]): StoredFailures {
  const kept = failures.slice(0, MAX_STORED_FAILURES).map((failure) => boundedFailure(storedFailure(failure)));
  if (failures.length <= MAX_STORED_FAILURES) return { failures: kept };
  const omitted = failures.slice(MAX_STORED_FAILURES);
  return { failures: kept, failuresOmitted: omitted.length, omittedEventIds: distinctEventIds(omitted.map((failure) => failure.eventId)) };
}

/**
 * Distinct event ids in order of first appearance, at most `MAX_STORED_FAILURES` of them: IMA
 * failures come first in a round, so without this a measured boot or PCR failure after a padded IMA
 * list would not be named in what is stored at all.
 */
export function distinctEventIds(eventIds: Iterable<string>): string[] {
  const distinct = new Set<string>();
  for (const eventId of eventIds) {
    distinct.add(eventId);
    if (distinct.size === MAX_STORED_FAILURES) break;
  }
  return [...distinct];
}

/**
 * `failure` through JSON (NaN becomes null, as jsonb and canonical JSON need); when longer than
 * `MAX_STORED_FAILURE_BYTES`, its context becomes the start of its JSON text and that text's length
 * (`{truncated, bytes}`). Event id, severity label and recoverability are kept as they are.
 */
export function boundedFailure(failure: StoredFailure): StoredFailure {
  const json = JSON.stringify(failure);
  if (Buffer.byteLength(json) <= MAX_STORED_FAILURE_BYTES) return JSON.parse(json) as StoredFailure;
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
