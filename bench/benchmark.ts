import { constants } from 'node:os';

/**
 * Thrown by a benchmark stopped by SIGINT or SIGTERM once it has torn down what it started (processes,
 * schema, temporary folders): `bench/main.ts` prints its message and exits `exitCode`, 128 + the
 * signal's number as a shell reports a process the signal ended (130 for SIGINT, 143 for SIGTERM).
 */
export class BenchmarkInterrupted extends Error {
  override readonly name = 'BenchmarkInterrupted';
  readonly exitCode: number;

  constructor(signal: NodeJS.Signals, message: string) {
    super(`interrupted by ${signal}: ${message}`);
    this.exitCode = 128 + constants.signals[signal];
  }
}

/** One benchmark: a name for `npm run bench -- <name>` and a function that prints its figures. */
export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(args: readonly string[]): Promise<void>;
}
