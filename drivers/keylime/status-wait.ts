import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { abortableDelay } from '../../lib/timing/abortable-delay.js';
import type { StatusVerdict } from '../../lib/attestation/operator-decision.js';

export interface WaitOptions {
  /** Give up after this long without a final verdict. */
  readonly timeoutMs: number;
  /** Pause between two reads while the verdict is pending. */
  readonly intervalMs: number;
  /** The task's signal: aborting it rejects at once with its reason. */
  readonly signal: AbortSignal;
  /** Errors worth another read before the deadline (an unreachable or overloaded verifier). */
  readonly isTransient: (error: unknown) => boolean;
}

/** The time a read begun at the deadline (the last one, after the last pause) is given to answer. */
const LAST_READ_GRACE_MS = 1000;

const NO_ANSWER = 'no answer yet';

/** What `settleBefore` gives when the deadline came first. */
export const EXPIRED = Symbol('expired');

/** A verdict the wait ends on. */
export type FinalVerdict = Exclude<StatusVerdict, { kind: 'pending' }>;

/**
 * Reads the verdict until it is final (`pass` or `fail`), pausing `intervalMs` between reads, for at
 * most `timeoutMs` — a read still running at the deadline (a verifier that accepted the connection and
 * never answers) is not waited for, save `LAST_READ_GRACE_MS` for the read begun at the deadline,
 * and neither is one running when the signal aborts. Transient read errors are retried like a
 * pending verdict; any other error rejects at once.
 *
 * @throws AttestationServiceUnavailable when the deadline passes, saying what was last seen.
 */
export async function waitForFinalVerdict(read: () => Promise<StatusVerdict>, options: WaitOptions): Promise<FinalVerdict> {
  // The monotonic clock: a wall-clock step (NTP) must neither stretch the wait nor start a read while one is running.
  const deadline = performance.now() + options.timeoutMs;
  let last = NO_ANSWER;
  let lastError: unknown;
  for (;;) {
    options.signal.throwIfAborted();
    let verdict: StatusVerdict | typeof EXPIRED | undefined;
    try {
      verdict = await settleBefore(read, Math.max(deadline - performance.now(), LAST_READ_GRACE_MS), options.signal);
    } catch (error) {
      if (options.signal.aborted) {
        throw options.signal.reason;
      }
      if (!options.isTransient(error)) {
        throw error;
      }
      last = error instanceof Error ? error.message : String(error);
      lastError = error;
    }
    if (verdict === EXPIRED) {
      if (last !== NO_ANSWER) last = `${last}; the last read had no answer yet`;
    } else if (verdict?.kind === 'pending') {
      last = verdict.why;
      lastError = undefined;
    } else if (verdict !== undefined) {
      return verdict;
    }
    const left = deadline - performance.now();
    // A read that took all the time left ends the wait even when `left` is still above 0: its timer may
    // fire a few ms before the deadline by this clock (libuv counts from the loop's cached time), and a
    // read begun then would be given the whole grace again (a stalled verifier read three times, not two).
    if (left <= 0 || verdict === EXPIRED) {
      throw new AttestationServiceUnavailable(`no verdict from the verifier within ${options.timeoutMs / 1000} s (last: ${last})`, {
        cause: lastError,
      });
    }
    await abortableDelay(Math.min(options.intervalMs, left), options.signal);
  }
}

/**
 * `read()`, or `EXPIRED` once `ms` have passed, or a rejection with the signal's reason when it aborts
 * first. A read left behind is ended by the caller closing its connection; its outcome is dropped.
 */
export async function settleBefore<T>(read: () => Promise<T>, ms: number, signal: AbortSignal): Promise<T | typeof EXPIRED> {
  // Promise.race below subscribes to `running` at once, so a read left behind that rejects later is handled.
  const running = read();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<typeof EXPIRED>((resolve, reject) => {
    timer = setTimeout(() => resolve(EXPIRED), Math.max(ms, 0));
    onAbort = () => reject(signal.reason);
    // An abort before this call fires no event: without the check the step waited `ms` for nothing.
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([running, stopped]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
