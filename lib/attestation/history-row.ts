import type { Failure } from './internal/failure.js';

/** One failure as the history and the API show it. */
export interface StoredFailure {
  readonly event_id: string;
  readonly severity_label: string;
  readonly context: Readonly<Record<string, unknown>>;
  readonly recoverable: boolean;
}

/** The append-only history row of one decided round (pass, fail, or an unreachable attempt to retry). */
export interface HistoryRow {
  readonly outcome: 'pass' | 'fail' | 'retry';
  readonly nonce: string | null;
  /** The `ima_ml_entry` the round asked for. */
  readonly imaMlEntry: number | null;
  /** IMA lines the agent sent back. */
  readonly imaEntriesReceived: number | null;
  /** The round's first failures, each bounded (`storedFailures`); a pass has none. */
  readonly failures: readonly StoredFailure[];
  /** Failures of the round left out of `failures` (`MAX_STORED_FAILURES`); absent when none were. */
  readonly failuresOmitted?: number;
  /** The distinct event ids of those left out, in order of first appearance. */
  readonly omittedEventIds?: readonly string[];
}

export function storedFailure(failure: Failure): StoredFailure {
  return { event_id: failure.eventId, severity_label: failure.severityLabel, context: failure.context, recoverable: failure.recoverable };
}
