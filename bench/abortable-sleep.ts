import { setTimeout as wait } from 'node:timers/promises';

/**
 * Waits `ms` (none when negative); rejects with `signal`'s reason as soon as it aborts, so that a
 * benchmark interrupted in a long wait (warm-up, window) goes straight to its teardown.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return wait(Math.max(0, ms), undefined, signal === undefined ? {} : { signal });
}
