/**
 * Thrown by a benchmark stopped by SIGINT or SIGTERM once it has torn down what it started (processes,
 * schema, temporary folders): `bench/main.ts` prints its message and exits 130.
 */
export class BenchmarkInterrupted extends Error {
  override readonly name = 'BenchmarkInterrupted';
}

/** One benchmark: a name for `npm run bench -- <name>` and a function that prints its figures. */
export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(args: readonly string[]): Promise<void>;
}
