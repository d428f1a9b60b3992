import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import type { HeapProfiler } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { limitCpu, type CpuLimit } from './cpu-limit.js';
import { procStatCpuMs } from './proc-stat-cpu.js';

/**
 * The verifier processes of `npm run bench -- verifier`: K children on one schema and data dir (one
 * CA), each with its own instance id, so the leases and `verifier_processes` split the agents between
 * them. `--profile DIR` profiles each child during the measured window only (not the fleet's set-up
 * or teardown): the parent writes `PROFILE START` / `PROFILE STOP` on the child's stdin; `--heap-profile
 * DIR` likewise with `HEAP PROFILE START` / `HEAP PROFILE STOP`.
 */
export interface VerifierProcesses {
  /** The first child's URL (enrolments go there; the fair share spreads them). */
  readonly url: string;
  /** Every child's URL, in the children's order. */
  readonly urls: readonly string[];
  readonly children: readonly ChildProcess[];
  /** Each child's stdout, line by line. */
  readonly lines: readonly Interface[];
  /** The children's CPU quotas, in the children's order (`limitVerifiers` adds them), released once they have exited. */
  readonly limits: CpuLimit[];
  /** Whether each child answers `HEAP PROFILE` commands (`--builds` may run a build older than this option). */
  readonly heapProfilers: readonly boolean[];
}

export interface SpawnVerifiersOptions {
  readonly count: number;
  readonly dataDir: string;
  readonly schema: string;
  readonly databaseUrl: string;
  readonly quoteInterval: number;
  /** Flag that makes `bench/main.js verifier` serve a verifier instead of benchmarking. */
  readonly childFlag: string;
  /**
   * The `bench/main.js` each child runs, in order (`--builds`: another checkout's build); absent or
   * shorter than `count`: this process's own.
   */
  readonly mains?: readonly string[];
}

/** Starts the children one after the other (the first creates the data dir's CA and certificates). */
export async function spawnVerifiers(options: SpawnVerifiersOptions): Promise<VerifierProcesses> {
  const children: ChildProcess[] = [];
  const lines: Interface[] = [];
  const urls: string[] = [];
  const heapProfilers: boolean[] = [];
  for (let i = 0; i < options.count; i += 1) {
    const started = await spawnOne(options, `bench-verifier-${i}`, options.mains?.[i] ?? (process.argv[1] as string));
    children.push(started.child);
    lines.push(started.lines);
    urls.push(started.url);
    heapProfilers.push(started.heapProfiler);
  }
  return { url: urls[0] ?? '', urls, children, lines, limits: [], heapProfilers };
}

/** Caps each child at `percentOfCore` % of one core (`--cpu-limit`, `bench/cpu-limit.ts`) until it exits. */
export async function limitVerifiers(processes: VerifierProcesses, percentOfCore: number): Promise<void> {
  for (const [i, child] of processes.children.entries()) {
    // Every child gets its limit, so the bench's `cpuReading` pairs the i-th limit with the i-th child.
    if (child.pid === undefined) throw new Error(`--cpu-limit: verifier process ${i} has no pid`);
    processes.limits.push(await limitCpu(child.pid, percentOfCore, `ironlime-bench-${process.pid}-${i}`));
  }
}

async function spawnOne(options: SpawnVerifiersOptions, instanceId: string, main: string): Promise<{ child: ChildProcess; url: string; lines: Interface; heapProfiler: boolean }> {
  const child = spawn(
    process.execPath,
    [
      main, 'verifier', options.childFlag,
      '--data-dir', options.dataDir,
      '--schema', options.schema,
      '--database', options.databaseUrl,
      '--quote-interval', String(options.quoteInterval),
      '--instance-id', instanceId,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> });
  let heapProfiler = false;
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === HEAP_PROFILER_LINE) heapProfiler = true;
      if (line.startsWith('VERIFIER ')) {
        resolve(line.slice('VERIFIER '.length));
      }
    });
    child.once('exit', (code) => reject(new Error(`the verifier process ended (exit code ${String(code)}) before listening`)));
  });
  return { child, url, lines, heapProfiler };
}

/** Asks every child to start profiling. */
export function startProfiles(processes: VerifierProcesses): void {
  for (const child of processes.children) child.stdin?.write('PROFILE START\n');
}

/**
 * Asks every child to write its profile of the window to `dir/verifier-<i>.cpuprofile`; resolves when
 * all are written, rejects when a child ends first. A child ended by the same Ctrl-C as the benchmark
 * never answers, and the wait for its answer held the benchmark before its teardown for good.
 */
export async function stopProfiles(processes: VerifierProcesses, dir: string): Promise<void> {
  await Promise.all(
    processes.children.map((_, i) => {
      const file = path.join(dir, `verifier-${i}.cpuprofile`);
      return askChild(processes, i, `PROFILE STOP ${file}`, (line) => (line === `PROFILE WRITTEN ${file}` ? true : undefined), 'writing its profile');
    }),
  );
}

/**
 * `--heap-profile`: starts V8's sampling heap profiler in every child, objects later collected kept
 * (so the profile counts what the window allocated, not what it left alive); resolves once every child
 * has started it.
 */
export async function startHeapProfiles(processes: VerifierProcesses): Promise<void> {
  await Promise.all(
    processes.children.map((_, i) => askChild(processes, i, 'HEAP PROFILE START', (line) => (line === 'HEAP PROFILE STARTED' ? true : undefined), 'starting its heap profiler')),
  );
}

/**
 * Asks every child to stop its heap profiler and write the profile to `dir/verifier-<i>.heapprofile`;
 * resolves to each child's estimate of the bytes it allocated while sampling (the sum of the samples'
 * sizes, which V8 scales to the allocations they stand for), in the children's order.
 */
export async function stopHeapProfiles(processes: VerifierProcesses, dir: string): Promise<number[]> {
  return Promise.all(
    processes.children.map((_, i) => {
      const file = path.join(dir, `verifier-${i}.heapprofile`);
      const answer = `HEAP PROFILE WRITTEN ${file} `;
      return askChild(processes, i, `HEAP PROFILE STOP ${file}`, (line) => (line.startsWith(answer) ? Number(line.slice(answer.length)) : undefined), 'writing its heap profile');
    }),
  );
}

/** Writes `command` on child `i`'s stdin; resolves to `answer` of the first line it accepts, rejects when the child ends first. */
function askChild<T>(processes: VerifierProcesses, i: number, command: string, answer: (line: string) => T | undefined, what: string): Promise<T> {
  const child = processes.children[i] as ChildProcess;
  const answered = new Promise<T>((resolve, reject) => {
    const settle = (): void => {
      processes.lines[i]?.off('line', onLine);
      child.off('exit', onExit);
    };
    const onLine = (line: string): void => {
      const value = answer(line);
      if (value === undefined) return;
      settle();
      resolve(value);
    };
    const onExit = (): void => {
      settle();
      reject(new Error(`verifier process ${i} ended before ${what}`));
    };
    if (child.exitCode !== null || child.signalCode !== null) {
      onExit();
      return;
    }
    processes.lines[i]?.on('line', onLine);
    child.once('exit', onExit);
  });
  // A child ending meanwhile (the same Ctrl-C) breaks the pipe: the write's error is its exit's, which
  // rejects `answered`; without a listener the stream's EPIPE would be an uncaught exception.
  child.stdin?.on('error', () => undefined);
  child.stdin?.write(`${command}\n`);
  return answered;
}

export async function stopVerifiers(processes: VerifierProcesses): Promise<void> {
  await Promise.all(
    processes.children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      await exited;
    }),
  );
  await Promise.all(processes.limits.map((limit) => limit.release()));
}

/** CPU seconds used so far by all the children (from /proc: utime + stime, 100 ticks per second on Linux). */
export function childrenCpuSeconds(processes: VerifierProcesses | undefined): number {
  return eachChildCpuSeconds(processes).reduce((sum, seconds) => sum + seconds, 0);
}

/** CPU seconds used so far by each child, in the children's order (0 for one that has exited). */
export function eachChildCpuSeconds(processes: VerifierProcesses | undefined): number[] {
  return (processes?.children ?? []).map((child) => (child.pid === undefined || child.exitCode !== null ? 0 : procStatCpuMs(`/proc/${child.pid}/stat`) / 1000));
}

/** Sampling interval of `--heap-profile`: one sample per 4 KiB allocated on average (V8's default is 32 KiB). */
const HEAP_SAMPLING_INTERVAL_BYTES = 4096;

/** The line a child that serves `HEAP PROFILE` commands prints before `VERIFIER <url>`; a build without it would never answer them. */
const HEAP_PROFILER_LINE = 'PROFILER HEAP';

/**
 * Child side: answers `PROFILE START` / `PROFILE STOP <file>` lines on stdin with the V8 CPU profiler,
 * and `HEAP PROFILE START` / `HEAP PROFILE STOP <file>` with its sampling heap profiler.
 */
export function serveProfileCommands(): void {
  const session = new Session();
  session.connect();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    void (async () => {
      if (line === 'PROFILE START') {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      } else if (line.startsWith('PROFILE STOP ')) {
        const file = line.slice('PROFILE STOP '.length);
        const { profile } = await session.post('Profiler.stop');
        // A directory that does not exist yet would leave the parent waiting for this line forever.
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, JSON.stringify(profile));
        process.stdout.write(`PROFILE WRITTEN ${file}\n`);
      } else if (line === 'HEAP PROFILE START') {
        await session.post('HeapProfiler.enable');
        await session.post('HeapProfiler.startSampling', heapSamplingParameters());
        process.stdout.write('HEAP PROFILE STARTED\n');
      } else if (line.startsWith('HEAP PROFILE STOP ')) {
        const file = line.slice('HEAP PROFILE STOP '.length);
        const { profile } = await session.post('HeapProfiler.stopSampling');
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, JSON.stringify(profile));
        process.stdout.write(`HEAP PROFILE WRITTEN ${file} ${sampledBytes(profile.head)}\n`);
      }
    })().catch((error: unknown) => process.stderr.write(`profiler: ${String(error)}\n`));
  });
  process.stdout.write(`${HEAP_PROFILER_LINE}\n`);
}

/**
 * Without the two `includeObjectsCollectedBy…` flags V8 drops the sample of every object a GC
 * collects, and the profile shows only what was still alive at its end, not what was allocated.
 * Node 20's inspector types do not list them yet; V8 11 takes them.
 */
function heapSamplingParameters(): HeapProfiler.StartSamplingParameterType {
  const parameters = { samplingInterval: HEAP_SAMPLING_INTERVAL_BYTES, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
  return parameters;
}

/** Bytes a sampling heap profile stands for: every node's `selfSize` (V8 scales each sample to the allocations it represents). */
function sampledBytes(node: HeapProfiler.SamplingHeapProfileNode): number {
  let total = node.selfSize;
  for (const child of node.children) total += sampledBytes(child);
  return total;
}
