/**
 * Work done in steps: a generator that pauses (yields nothing) between slices of its work and returns
 * its result. The pure core stays synchronous and deterministic: where the work pauses changes nothing
 * in what it computes. A caller that must not hold its thread for long (the verifier's event loop
 * judging a huge IMA list) resumes it on later turns; any other runs it to the end at once (`finish`).
 */
export type Stepwise<T> = Generator<void, T, void>;

/** Runs `work` to its end, now, and returns its result. */
export function finish<T>(work: Stepwise<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done === true) return step.value;
  }
}
