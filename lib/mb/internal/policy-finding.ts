import type { BootEvent } from '../boot-events.js';
import type { RefstateDigest } from '../mb-refstate.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';

/**
 * One way a log differs from its refstate: the component (`db`, `kernels[0].shim`, …), the reason,
 * and the expected and actual values where there are any. `events` are the log sequence numbers
 * involved, so an operator can find them in `ironlime mb replay` output or tpm2_eventlog.
 */
export interface PolicyFinding {
  readonly component: string;
  readonly reason: string;
  readonly expected?: unknown;
  readonly actual?: unknown;
  readonly events?: readonly number[];
}

/**
 * Events a count mismatch lists at most (the reason gives the count). Each refstate alternative is
 * compared with the log, so listing every event would cost the log's length once per alternative:
 * quadratic in a request to `POST /verify/evidence`, which carries both.
 */
export const LISTED_EVENTS = 32;

/** The bank the `example` policy compares: its refstate digests are SHA-256. */
export const POLICY_BANK = 'sha256';

/** `0x…` lowercase hex of a digest, the refstate's notation. */
export function refHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

/** Whether the event's digest equals `expected` (`0x…` hex), in constant time after a length check. */
export function digestIs(event: BootEvent, expected: string): boolean {
  const want = Buffer.from(expected.slice(2), 'hex');
  return bytesEqual(want, event.digest);
}

/**
 * The SHA-256 values of refstate digests, to look an event's digest up in. They are public values
 * (digests of code anyone may inspect), so a set needs no constant-time comparison, and checking a
 * log's events against a refstate's list costs one look-up per event, not one per pair: both come
 * with a public `POST /verify/evidence`.
 */
export function digestSet(expected: readonly RefstateDigest[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const d of expected) {
    const value = d[POLICY_BANK];
    if (value !== undefined) {
      out.add(value.slice(2).toLowerCase());
    }
  }
  return out;
}

/** Whether the event's digest is in `set` (`digestSet`). */
export function inDigestSet(event: BootEvent, set: ReadonlySet<string>): boolean {
  return set.has(Buffer.from(event.digest).toString('hex'));
}

/** The differences between the events' digests and an expected sequence, position by position. */
export function sequenceFindings(
  component: string,
  what: string,
  actual: readonly BootEvent[],
  expected: readonly (string | undefined)[],
  names: readonly string[] = [],
): PolicyFinding[] {
  const findings: PolicyFinding[] = [];
  if (actual.length !== expected.length) {
    const listed = actual.slice(0, LISTED_EVENTS);
    findings.push({
      component,
      reason: `the log has ${actual.length} ${what}, the refstate expects ${expected.length}${listedNote(actual)}`,
      expected: expected.map((e) => e ?? null),
      actual: listed.map((e) => refHex(e.digest)),
      events: listed.map((e) => e.sequence),
    });
  }
  for (let i = 0; i < Math.min(actual.length, expected.length); i++) {
    const event = actual[i] as BootEvent;
    const want = expected[i];
    if (want === undefined || !digestIs(event, want)) {
      findings.push({
        component: names[i] === undefined ? `${component}[${i}]` : `${component}.${names[i]}`,
        reason: `${names[i] ?? `${what} #${i}`} digest differs`,
        expected: want ?? null,
        actual: refHex(event.digest),
        events: [event.sequence],
      });
    }
  }
  return findings;
}

/** `(the first N listed)` when `events` are more than a finding lists, else nothing. */
export function listedNote(events: readonly unknown[]): string {
  return events.length > LISTED_EVENTS ? ` (the first ${LISTED_EVENTS} listed)` : '';
}

/** Of several alternatives, the findings of the one that differs least (all empty means a match). */
export function bestAlternative(alternatives: readonly PolicyFinding[][], component: string): PolicyFinding[] {
  let best: PolicyFinding[] | undefined;
  let bestIndex = 0;
  alternatives.forEach((findings, i) => {
    if (best === undefined || findings.length < best.length) {
      best = findings;
      bestIndex = i;
    }
  });
  if (best === undefined || best.length === 0 || alternatives.length === 1) {
    return best ?? [];
  }
  return best.map((f) => ({
    ...f,
    reason: `${f.reason} (no ${component} entry matches; closest is ${component}[${bestIndex}] of ${alternatives.length})`,
  }));
}
