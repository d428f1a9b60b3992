import 'reflect-metadata';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FuzzFinding, FuzzReport } from '../lib/fuzz/fuzz-runner.js';
import { FUZZ_TARGETS } from '../lib/fuzz/fuzz-targets.js';

/**
 * `npm run fuzz -- <target|all> [--count N] [--seed S] [--start I] [--slow-ms MS] [--hang-ms MS] [--heap-mb MB]`
 *
 * Feeds every parser and DTO that takes untrusted input (lib/fuzz/*-fuzz-targets.ts, by family) with mutations of
 * real evidence and of the inputs of issue 11, each target in a worker thread with a heap bound
 * (`--heap-mb`, default 512) and a watchdog: an input that runs `--hang-ms` (default 10 s) without
 * returning is a hang (the worker is stopped and the run goes on after it), one slower than
 * `--slow-ms` (default 2 s) is reported as one too, and a worker that runs out of heap is a memory
 * blow-up. Exits 1 when any target had an untyped exception, a hang or a memory blow-up, 2 on a usage
 * error, 0 otherwise. Input i of seed s is reproducible: `--seed s --start i --count 1`.
 */

interface Options {
  targets: string[];
  count: number;
  seed: number;
  start: number;
  slowMs: number;
  hangMs: number;
  heapMb: number;
}

const USAGE = `usage: npm run fuzz -- <target|all> [--count N] [--seed S] [--start I] [--slow-ms MS] [--hang-ms MS] [--heap-mb MB]
targets: ${FUZZ_TARGETS.map((t) => t.name).join(', ')}`;

function parseArgs(argv: readonly string[]): Options {
  const options: Options = { targets: [], count: 10_000, seed: 1, start: 0, slowMs: 2_000, hangMs: 10_000, heapMb: 512 };
  const numeric: Record<string, keyof Omit<Options, 'targets'>> = {
    '--count': 'count', '--seed': 'seed', '--start': 'start', '--slow-ms': 'slowMs', '--hang-ms': 'hangMs', '--heap-mb': 'heapMb',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const field = numeric[arg];
    if (field !== undefined) {
      const value = argv[i + 1];
      if (value === undefined || !/^[0-9]{1,10}$/.test(value)) {
        throw new Error(`${arg} needs a non-negative integer`);
      }
      options[field] = Number(value);
      i += 1;
    } else if (arg === 'all') {
      options.targets.push(...FUZZ_TARGETS.map((t) => t.name));
    } else if (FUZZ_TARGETS.some((t) => t.name === arg)) {
      options.targets.push(arg);
    } else {
      throw new Error(`unknown target or option ${arg}`);
    }
  }
  if (options.targets.length === 0) {
    throw new Error('name a target or all');
  }
  return options;
}

interface Slice {
  readonly report?: FuzzReport;
  /** Where the slice stopped early (a hang or a memory blow-up at this index). */
  readonly stoppedAt?: FuzzFinding;
}

function runSlice(target: string, options: Options, start: number, count: number): Promise<Slice> {
  // [0]: the input being run; [1]: 1 once the worker has loaded and started its first input.
  const progress = new SharedArrayBuffer(8);
  const current = new Int32Array(progress);
  Atomics.store(current, 0, start);
  const worker = new Worker(path.join(import.meta.dirname, 'fuzz-worker.js'), {
    workerData: { target, seed: options.seed, start, count, slowMs: options.slowMs, progress },
    resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
  });
  return new Promise((resolve) => {
    let last = -1;
    let lastChange = Date.now();
    let settled = false;
    const finish = (slice: Slice): void => {
      if (!settled) {
        settled = true;
        clearInterval(watchdog);
        resolve(slice);
      }
    };
    const watchdog = setInterval(() => {
      const index = Atomics.load(current, 0);
      if (Atomics.load(current, 1) === 0) {
        // Still loading modules and seeds (slow on a busy machine): not an input's time yet.
        lastChange = Date.now();
        return;
      }
      if (index !== last) {
        last = index;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > options.hangMs) {
        void worker.terminate();
        finish({ stoppedAt: { index, kind: 'hang', detail: `no progress for ${options.hangMs} ms` } });
      }
    }, 100);
    worker.on('message', (report: FuzzReport) => finish({ report }));
    worker.on('error', (error: Error & { code?: string }) => {
      const index = Atomics.load(current, 0);
      const kind = error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'untyped-exception';
      finish({ stoppedAt: { index, kind, detail: `${error.name}: ${error.message}` } });
    });
    worker.on('exit', () => finish({ stoppedAt: { index: Atomics.load(current, 0), kind: 'memory', detail: 'worker exited without a report' } }));
  });
}

interface TargetTotals {
  target: string;
  inputs: number;
  accepted: number;
  typedErrors: number;
  findings: FuzzFinding[];
  slowestMs: number;
  cpuMicros: number;
}

async function fuzzTarget(target: string, options: Options): Promise<TargetTotals> {
  const totals: TargetTotals = { target, inputs: 0, accepted: 0, typedErrors: 0, findings: [], slowestMs: 0, cpuMicros: 0 };
  let start = options.start;
  const end = options.start + options.count;
  while (start < end) {
    const slice = await runSlice(target, options, start, end - start);
    if (slice.report !== undefined) {
      totals.inputs += slice.report.inputs;
      totals.accepted += slice.report.accepted;
      totals.typedErrors += slice.report.typedErrors;
      totals.findings.push(...slice.report.findings);
      totals.slowestMs = Math.max(totals.slowestMs, slice.report.slowestMs);
      totals.cpuMicros += slice.report.cpuMicros;
      break;
    }
    const stopped = slice.stoppedAt as FuzzFinding;
    totals.findings.push(stopped);
    // Inputs before the stop ran, but their counts died with the worker: count them as run.
    totals.inputs += stopped.index - start;
    start = stopped.index + 1;
  }
  return totals;
}

async function main(argv: readonly string[]): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  process.stdout.write(`fuzz: seed ${options.seed}, inputs ${options.start}..${options.start + options.count - 1} per target, ` +
    `slow ${options.slowMs} ms, hang ${options.hangMs} ms, heap ${options.heapMb} MiB\n`);
  let failed = false;
  for (const target of options.targets) {
    const totals = await fuzzTarget(target, options);
    const count = (kind: FuzzFinding['kind']): number => totals.findings.filter((f) => f.kind === kind).length;
    const perInput = totals.inputs === 0 ? 0 : totals.cpuMicros / totals.inputs;
    process.stdout.write(
      `${target.padEnd(16)} ${String(totals.inputs).padStart(9)} inputs  accepted ${totals.accepted}  typed errors ${totals.typedErrors}  ` +
        `untyped ${count('untyped-exception')}  hangs ${count('hang')}  memory ${count('memory')}  ` +
        `slowest ${totals.slowestMs.toFixed(1)} ms  cpu ${perInput.toFixed(1)} µs/input\n`,
    );
    for (const finding of totals.findings.slice(0, 5)) {
      process.stdout.write(`  ${finding.kind} at input ${finding.index}: ${finding.detail}\n` +
        `    replay: npm run fuzz -- ${target} --seed ${options.seed} --start ${finding.index} --count 1\n`);
    }
    failed ||= totals.findings.length > 0;
  }
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
