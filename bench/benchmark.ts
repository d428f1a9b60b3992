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

/** Thrown by a benchmark for arguments it cannot run with, before it starts anything: `bench/main.ts` prints the message alone and exits 2. */
export class BenchmarkUsageError extends Error {
  override readonly name = 'BenchmarkUsageError';
}

/** One benchmark: a name for `npm run bench -- <name>` and a function that prints its figures. */
export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(args: readonly string[]): Promise<void>;
}
