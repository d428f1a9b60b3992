import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Stepwise } from '../ima/stepwise.js';

/**
 * How long, in ms, a round's judging holds the event loop before it lets other work in: the other
 * agents' rounds, the push routes, /health and /metrics wait at most about this long for one reply.
 */
export const JUDGING_SLICE_MS = 10;

/**
 * Runs `work` on the event loop a slice at a time. Work that ends within `sliceMs` (a usual round: a
 * few new IMA lines) ends at once, its result returned as is, with no extra turn; longer work (a whole
 * IMA log of 450,000 lines, seconds of replay) goes on in slices of about `sliceMs` (plus the step that
 * crosses it: a chunk of lines, well under a ms), each on a later turn of the event loop.
 */
export function judgeInSlices<T>(work: Stepwise<T>, sliceMs: number = JUDGING_SLICE_MS): T | Promise<T> {
  const step = slice(work, sliceMs);
  return step.done === true ? step.value : rest(work, sliceMs);
}

function slice<T>(work: Stepwise<T>, sliceMs: number): IteratorResult<void, T> {
  const until = performance.now() + sliceMs;
  let step = work.next();
  while (step.done !== true && performance.now() < until) step = work.next();
  return step;
}

async function rest<T>(work: Stepwise<T>, sliceMs: number): Promise<T> {
  for (;;) {
    await nextTurn();
    const step = slice(work, sliceMs);
    if (step.done === true) return step.value;
  }
}
