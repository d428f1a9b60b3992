import type { Stepwise } from '../../ima/stepwise.js';

/**
 * Events a stepwise pass over a boot log (parse, replay, policy) handles between two pauses: well under
 * a millisecond to a few milliseconds of work (the whole check costs some 15 µs an event at the 10,000-event
 * bound on the development machine, docs/measured-boot.md "Performance"), so that a caller resuming it in slices of 10 ms (the verifier's
 * `judgeInSlices`) overshoots a slice by little. A hostile log of tens of MiB holds hundreds of thousands.
 */
export const EVENTS_PER_STEP = 256;

/**
 * `pick(events)` a chunk of `EVENTS_PER_STEP` events at a time, pausing between chunks (`Stepwise`),
 * for a `pick` that keeps or maps each event on its own, as a filter does: its results over the
 * consecutive chunks, concatenated, are its result over all the events.
 */
export function* pickInSteps<E, R>(events: readonly E[], pick: (chunk: readonly E[]) => readonly R[]): Stepwise<R[]> {
  const out: R[] = [];
  for (let at = 0; at < events.length; at += EVENTS_PER_STEP) {
    for (const picked of pick(at === 0 && events.length <= EVENTS_PER_STEP ? events : events.slice(at, at + EVENTS_PER_STEP))) out.push(picked);
    if (at + EVENTS_PER_STEP < events.length) yield;
  }
  return out;
}
