import 'reflect-metadata';
import { parentPort, workerData } from 'node:worker_threads';
import { runTarget } from '../lib/fuzz/fuzz-runner.js';
import { FUZZ_TARGETS } from '../lib/fuzz/fuzz-targets.js';

/** One slice of one target in a worker thread; the main thread watches `progress[0]` (the current input). */
interface WorkerInput {
  readonly target: string;
  readonly seed: number;
  readonly start: number;
  readonly count: number;
  readonly slowMs: number;
  readonly progress: SharedArrayBuffer;
}

const input = workerData as WorkerInput;
const target = FUZZ_TARGETS.find((t) => t.name === input.target);
if (target === undefined) {
  throw new Error(`unknown target ${input.target}`);
}
const progress = new Int32Array(input.progress);
const report = runTarget(target, {
  seed: input.seed,
  start: input.start,
  count: input.count,
  slowMs: input.slowMs,
  onInput: (index) => {
    Atomics.store(progress, 0, index);
    Atomics.store(progress, 1, 1);
  },
});
parentPort?.postMessage(report);
