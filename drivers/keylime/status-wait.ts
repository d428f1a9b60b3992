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

/** A verdict the wait ends on. */
export type FinalVerdict = Exclude<StatusVerdict, { kind: 'pending' }>;

/**
 * Reads the verdict until it is final (`pass` or `fail`), pausing `intervalMs` between reads, for at
 * most `timeoutMs`. Transient read errors are retried like a pending verdict; any other error rejects
 * at once.
 *
 * @throws AttestationServiceUnavailable when the deadline passes, saying what was last seen.
 */
export async function waitForFinalVerdict(read: () => Promise<StatusVerdict>, options: WaitOptions): Promise<FinalVerdict> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'no answer yet';
  let lastError: unknown;
  for (;;) {
    options.signal.throwIfAborted();
    try {
      const verdict = await read();
      if (verdict.kind !== 'pending') {
        return verdict;
      }
      last = verdict.why;
      lastError = undefined;
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
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new AttestationServiceUnavailable(`no verdict from the verifier within ${options.timeoutMs / 1000} s (last: ${last})`, {
        cause: lastError,
      });
    }
    await abortableDelay(Math.min(options.intervalMs, left), options.signal);
  }
}
