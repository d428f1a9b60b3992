import { IronlimeError } from '../../interfaces/errors.js';

export interface WaitOptions {
  /** Give up after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** Between polls (default 250 ms). */
  readonly intervalMs?: number;
}

/**
 * Calls `done` until it resolves true, `intervalMs` apart; after `timeoutMs` throws `ERR_TIMEOUT`
 * with `${what} after <n> ms`. Errors from `done` end the wait at once.
 */
export async function pollUntil(wait: WaitOptions, what: string, done: () => Promise<boolean>): Promise<void> {
  const timeout = wait.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeout;
  const interval = wait.intervalMs ?? 250;
  for (;;) {
    if (await done()) {
      return;
    }
    if (Date.now() >= deadline) {
      throw new IronlimeError('ERR_TIMEOUT', `${what} after ${timeout} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
