import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { destination, pino } from 'pino';
import { createDatabase } from '../lib/db/database-factory.js';
import { startFleet } from '../lib/fleet/fleet.js';
import { StopSignal } from '../lib/fleet/stop-signal.js';
import type { EkAlgorithm } from '../lib/tpm-access/tpm-port.js';
import { analyseRoundTiming, type RoundRecord, type RoundTimingReport } from '../lib/fleet/round-timing.js';
import { runUntilSignal } from '../lib/http/service-lifecycle.js';
import { startVerifier } from '../lib/verifier/verifier-server.js';
import { TerminalProgress } from '../lib/cli/terminal-progress.js';
import { slotsAtWindowEdges } from './rounds-per-slot.js';
import { detectionText, lateText, pct, printReport, printRoundsPerSlot, writeVerifierRunFiles } from './verifier-bench-output.js';
import { BenchmarkInterrupted, BenchmarkUsageError, type Benchmark } from './benchmark.js';
import { abortableDelay } from '../lib/timing/abortable-delay.js';
import { cpuLimitProblem } from './cpu-limit.js';
import { tamperCount, tamperDuringWindow } from './tamper-window.js';
import { pushFleetLine } from './push-fleet-line.js';
import { runPushWindow, type PushWindow } from './verifier-push-bench.js';
import { decidedRounds, describeBuilds, type BuildReading } from './build-comparison.js';
import {
  childrenCpuSeconds,
  eachChildCpuSeconds,
  limitVerifiers,
  serveProfileCommands,
  spawnVerifiers,
  startHeapProfiles,
  startProfiles,
  stopHeapProfiles,
  stopProfiles,
  stopVerifiers,
  type VerifierProcesses,
} from './verifier-processes.js';

/**
 * `npm run bench -- verifier --agents 100,250,500,1000 [--seconds 60] [--quote-interval 2] [--warmup 30]`: one
 * verifier polling a simulated fleet (`lib/fleet`) for a fixed window; see docs/fleet.md for the
 * method. The verifier runs in a child process (`--in-process` puts it beside the fleet), on
 * PostgreSQL in a fresh schema that is dropped afterwards (`--database`, default the test server).
 * `--profile DIR` writes the verifier's V8 CPU profile of the measured window there (`DIR/push` for the
 * push window). `--heap-profile DIR` writes each pull verifier process's sampling heap profile of the window
 * there and prints its bytes allocated per decided round (`heapAllocationText`); with `--push`, the push
 * verifier's too (`DIR/push`), per push attestation (`pushHeapAllocationText`). `--push` then runs
 * push agents (`bench/verifier-push-bench.ts`) at the same sizes and prints CPU per attestation of both
 * modes. `--verifiers K` runs K verifier processes on the schema (the leases split the agents) and, for
 * K > 1, first the same fleet size with one process, then prints the ratio of their attestations/s.
 * `--cpu-limit PCT` caps each pull verifier process at PCT % of one core once the fleet is enrolled, so
 * that one process, not the machine, is the limit (`bench/cpu-limit.ts`; root and a cgroup cpu controller;
 * not with `--push` or `--in-process`). `--ak rsa` gives the simulated TPMs RSA-2048 AKs signing with
 * RSASSA, Keylime's default, instead of P-256 AKs signing with ECDSA (their EKs stay P-256 either way).
 * `--builds DIR,DIR…` runs one verifier process per checkout (each one's built `dist/bench/main.js`)
 * on the same fleet at once and prints each one's CPU per round (`bench/build-comparison.ts`).
 * `--push-only` runs the push windows without the pull windows; with `--builds`, one push window per
 * build, one after the other (`pushWindowsOnly`).
 */

interface BenchArgs {
  readonly agents: number[];
  readonly seconds: number;
  readonly quoteInterval: number;
  readonly tamper: number | undefined;
  readonly imaRate: number;
  /** Seconds the verifier polls the whole fleet before the window opens. */
  readonly warmup: number;
  readonly inProcess: boolean;
  readonly profileDir: string | undefined;
  /** `--heap-profile DIR`: each verifier process's V8 sampling heap profile of the window, and its bytes allocated per decided round. */
  readonly heapProfileDir: string | undefined;
  readonly databaseUrl: string;
  /** Also run push agents at the same fleet sizes and compare CPU per attestation (issue 13). */
  readonly push: boolean;
  /** `--push-only`: the push windows without the pull windows (with `--builds`, one per build). */
  readonly pushOnly: boolean;
  readonly verifiers: number;
  /** `--cpu-limit PCT`: each pull verifier process capped at PCT % of one core once the fleet is enrolled (bench/cpu-limit.ts). */
  readonly cpuLimitPercent: number | undefined;
  /** `--ak`: the simulated TPMs' AK family (default `ecc`, P-256 and ECDSA; `rsa`, RSA-2048 and RSASSA). */
  readonly akAlgorithm: EkAlgorithm;
  /** `--builds`: checkouts whose builds run side by side, one verifier process each (`verifiers` is their count). */
  readonly builds: readonly string[] | undefined;
}

const EXPECTED_EVENT = 'ima.validation.ima-ng.not_in_allowlist';
/**
 * Before the window: the fifth pass found TurboFan still compiling in a window opened 6 s after a
 * 300-agent fleet's set-up (about 5 % of the verifier's CPU). See docs/fleet.md, "Method".
 */
const DEFAULT_WARMUP_SECONDS = 30;
const CHILD_FLAG = '--serve-verifier';

export const verifierBenchmark: Benchmark = {
  name: 'verifier',
  description: 'attestations/s, late rounds and tamper-detection time of one verifier polling a simulated fleet',
  async run(args) {
    if (args.includes(CHILD_FLAG)) {
      await serveVerifier(args);
      return;
    }
    const options = parseArgs(args);
    const results: { agents: number; report: RoundTimingReport; cpu: string }[] = [];
    // Caught for the whole run: without it, Ctrl-C or a SIGTERM ended the process on the spot and left
    // its schema in the shared database and its data dir (the CA's keys) in the temporary folder.
    const stop = new StopSignal();
    try {
      for (const agents of options.pushOnly ? [] : options.agents) {
        const one = options.verifiers > 1 && options.builds === undefined ? await runOnce(agents, { ...options, verifiers: 1 }, stop.abortSignal) : undefined;
        const { report, cpu } = await runOnce(agents, options, stop.abortSignal);
        results.push({ agents, report, cpu });
        if (one !== undefined) {
          process.stdout.write(
            `${options.verifiers} verifier processes / 1: ${(report.attestationsPerSecond / one.report.attestationsPerSecond).toFixed(2)}× the attestations/s (${report.attestationsPerSecond.toFixed(1)} / ${one.report.attestationsPerSecond.toFixed(1)}); CPU ${cpu} against ${one.cpu}\n`,
          );
        }
      }
      if (options.pushOnly) {
        await pushWindowsOnly(options, stop.abortSignal);
      } else if (options.push) {
        await comparePush(results, options, stop.abortSignal);
      }
    } catch (error) {
      // Whatever failed once a signal came (the window's wait, or a verifier child ended by the same
      // Ctrl-C), the teardown in `runOnce` has run by now.
      if (stop.received !== undefined) throw new BenchmarkInterrupted(stop.received, 'verifier processes stopped, schema dropped, data dir removed');
      throw error;
    } finally {
      stop.dispose();
    }
    if (results.length > 1) {
      process.stdout.write(`\n| agents | attestations/s | late rounds | detection p50 / p99 (s) | ${'CPU'.padEnd(8)} |\n|---|---|---|---|---|\n`);
      for (const { agents, report, cpu } of results) {
        process.stdout.write(`| ${agents} | ${report.attestationsPerSecond.toFixed(1)} | ${lateText(report)} | ${detectionText(report.detectionMs)} | ${cpu} |\n`);
      }
    }
  },
};

async function runOnce(agents: number, options: BenchArgs, signal: AbortSignal): Promise<{ report: RoundTimingReport; cpu: string }> {
  const schema = `bench_verifier_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: options.databaseUrl, pool: { min: 0, max: 1 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-verifier-bench-'));
  const log = pino({ level: 'warn' }, destination(2));
  let children: VerifierProcesses | undefined;
  await admin.raw('create schema ??', [schema]);
  try {
    const database = { databaseUrl: options.databaseUrl, databaseSchema: schema };
    let verifierUrl: string | undefined;
    if (!options.inProcess) {
      children = await spawnVerifiers({
        count: options.verifiers,
        dataDir,
        schema,
        databaseUrl: options.databaseUrl,
        quoteInterval: options.quoteInterval,
        childFlag: CHILD_FLAG,
        ...(options.builds === undefined ? {} : { mains: options.builds.map((build) => path.join(build, 'dist', 'bench', 'main.js')) }),
      });
      verifierUrl = children.url;
      const without = children.heapProfilers.indexOf(false);
      if (options.heapProfileDir !== undefined && without >= 0) {
        // Such a child ignores the commands, and the window's end would wait for its answer for good.
        throw new BenchmarkUsageError(`--heap-profile: verifier process ${without}'s build has no heap profiler (${options.builds?.[without] ?? 'this build'}); rebuild it from a tree that has the option`);
      }
    }
    const setupStart = Date.now();
    const enrolling = new TerminalProgress(`enrolling ${agents} agents`);
    const fleet = await startFleet({
      agents,
      dataDir,
      ...database,
      quoteInterval: options.quoteInterval,
      imaEntriesPerMinute: options.imaRate,
      akAlgorithm: options.akAlgorithm,
      startConcurrency: 16,
      deregisterOnClose: false,
      logger: log,
      enrolled: (done, total) => enrolling.update(done, total),
      ...(verifierUrl === undefined ? {} : { verifierUrl }),
      signal,
    });
    enrolling.finish();
    try {
      const setupSeconds = (Date.now() - setupStart) / 1000;
      // Capped after the set-up: enrolling through a capped verifier takes many times longer, and the
      // warm-up below lets the capped processes settle before the window.
      if (children !== undefined && options.cpuLimitPercent !== undefined) await limitVerifiers(children, options.cpuLimitPercent);
      // Let the last enrolled agents settle into their rhythm, and the verifier's JIT finish its
      // compiles for the whole fleet's work, before measuring: the window is the steady state.
      await abortableDelay(Math.max(2 * options.quoteInterval + 2, options.warmup) * 1000, signal);
      if (children !== undefined && options.profileDir !== undefined) startProfiles(children);
      const heapBefore = children !== undefined && options.heapProfileDir !== undefined ? await startHeapWindow(children, dataDir) : undefined;
      const buildsBefore = options.builds === undefined ? undefined : await readBuilds(children, dataDir, false);
      const cpuBefore = cpuReading(children);
      const from = Date.now();
      const to = from + options.seconds * 1000;
      const edgeMs = Math.min(60, options.seconds / 5) * 1000;
      const slots = children === undefined ? undefined : slotsAtWindowEdges(children.url, dataDir, { from, to, edgeMs }, signal);
      const tampered = await tamperDuringWindow(fleet.agents, tamperCount(agents, options.tamper), from, options.seconds, signal);
      await abortableDelay(to - Date.now(), signal);
      // Read before waiting for the last scrape, so the scrape's own CPU stays out of the window.
      const cpuAfter = cpuReading(children);
      const buildsAfter = options.builds === undefined ? undefined : await readBuilds(children, dataDir, true);
      const roundsPerSlot = await slots;
      if (children !== undefined && options.profileDir !== undefined) await stopProfiles(children, options.profileDir);
      const heap = children !== undefined && options.heapProfileDir !== undefined && heapBefore !== undefined ? await stopHeapWindow(children, dataDir, options.heapProfileDir, heapBefore) : undefined;
      // Detections of late tamperings land after the window: wait for them before reading.
      await abortableDelay((3 * options.quoteInterval + 3) * 1000, signal);
      const requestTimes = new Map(fleet.agents.map((agent) => [agent.uuid, agent.quoteRequests]));
      const report = analyseRoundTiming({
        rounds: await readHistory(admin, schema, from - 5 * options.quoteInterval * 1000),
        requestTime: (agentId, nonce) => requestTimes.get(agentId)?.get(nonce),
        quoteIntervalSeconds: options.quoteInterval,
        from,
        to,
        tampered,
        expectedEvent: EXPECTED_EVENT,
        agentIds: fleet.agents.map((agent) => agent.uuid),
      });
      // Shares over the readings' own span, which the window's closing sleep may overshoot.
      const spanSeconds = (cpuAfter.atMs - cpuBefore.atMs) / 1000;
      const verifierCpu = (cpuAfter.verifier - cpuBefore.verifier) / spanSeconds;
      const fleetCpu = (cpuAfter.fleet - cpuBefore.fleet) / spanSeconds;
      // CPU time per passing round does not depend on how busy the machine is, unlike the rates.
      const perRound = (share: number): string => (report.attestations === 0 ? '-' : `${((share * spanSeconds * 1000) / report.attestations).toFixed(2)} ms`);
      const cpu = options.inProcess
        ? `${pct(fleetCpu)} verifier and fleet together (${perRound(fleetCpu)} per attestation)`
        : `${pct(verifierCpu)} ${options.verifiers > 1 ? `${options.verifiers} verifiers` : 'verifier'} (${perRound(verifierCpu)} per attestation) / ${pct(fleetCpu)} fleet`;
      printReport({ ...options, agents, setupSeconds, expectedEvent: EXPECTED_EVENT, report, cpu });
      if (roundsPerSlot !== undefined) {
        printRoundsPerSlot(roundsPerSlot, edgeMs);
      }
      if (options.builds !== undefined && buildsBefore !== undefined && buildsAfter !== undefined) {
        process.stdout.write(describeBuilds(options.builds, buildsBefore, buildsAfter));
      }
      if (heap !== undefined) process.stdout.write(heap);
      if (options.cpuLimitPercent !== undefined) {
        printCaps(options.cpuLimitPercent, cpuBefore, cpuAfter);
      }
      const files = await writeVerifierRunFiles({ agents, quoteInterval: options.quoteInterval, from, to, report, cpu, ...(roundsPerSlot === undefined ? {} : { roundsPerSlot }) });
      process.stdout.write(`figures: ${files.json}, plot: ${files.svg}\n`);
      return { report, cpu: options.push ? `${perRound(verifierCpu)}` : cpu };
    } finally {
      // The verifiers first: a verifier that outlived the fleet would fail every agent as unreachable
      // and fan revocation notices out to agents already gone.
      if (children !== undefined) await stopVerifiers(children);
      await fleet.close();
    }
  } finally {
    if (children !== undefined) {
      await stopVerifiers(children);
    }
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function readHistory(admin: Knex, schema: string, since: number): Promise<RoundRecord[]> {
  const rows = (await admin
    .withSchema(schema)
    .table('verifier_attestation_history')
    .select('agent_id', 'attempted_at', 'outcome', 'nonce', 'failures')
    .where('attempted_at', '>=', new Date(since))) as { agent_id: string; attempted_at: Date; outcome: RoundRecord['outcome']; nonce: string | null; failures: { event_id: string }[] }[];
  return rows.map((row) => ({
    agentId: row.agent_id,
    verdictAt: row.attempted_at.getTime(),
    outcome: row.outcome,
    nonce: row.nonce,
    eventIds: row.failures.map((failure) => failure.event_id),
  }));
}

/**
 * `--push`: the same fleet sizes as push agents, in the same run, and the verifier's CPU per
 * attestation of each mode side by side. Push holds k× the agents of pull at the same CPU per
 * attestation when k = pull ms / push ms (the work per agent is the per-attestation cost times the rate).
 */
async function comparePush(pull: readonly { agents: number; cpu: string }[], options: BenchArgs, signal: AbortSignal): Promise<void> {
  const fleetLines: string[] = [];
  process.stdout.write(`\n| agents | pull CPU/attestation | push CPU/attestation | push attestations/s | push failures (untampered) | push tampered / detected | pull/push |\n|---|---|---|---|---|---|---|\n`);
  for (const { agents, cpu } of pull) {
    const window = await pushWindow(agents, options, undefined, signal);
    const pushMs = pushCpuMs(window, options.seconds);
    const pullMs = Number.parseFloat(cpu);
    process.stdout.write(
      `| ${agents} | ${cpu} | ${Number.isNaN(pushMs) ? '-' : `${pushMs.toFixed(2)} ms`} | ${(window.attestations / options.seconds).toFixed(1)} | ${window.failures} | ${window.tampered} / ${window.detected} | ${Number.isNaN(pushMs) || Number.isNaN(pullMs) ? '-' : `${(pullMs / pushMs).toFixed(2)}×`} |\n`,
    );
    fleetLines.push(pushFleetLine(agents, options.seconds, options.quoteInterval, window));
    if (options.heapProfileDir !== undefined && window.heapBytes !== undefined) {
      fleetLines.push(pushHeapAllocationText(path.join(options.heapProfileDir, 'push', 'verifier-0.heapprofile'), window.heapBytes, window.attestations));
    }
  }
  process.stdout.write(`\n${fleetLines.join('\n')}\n`);
}

/** One push window of `agents` (`runPushWindow` with the bench's settings); its verifier child runs `main` (`--builds`), or this build. */
function pushWindow(agents: number, options: BenchArgs, main: string | undefined, signal: AbortSignal): Promise<PushWindow> {
  return runPushWindow({
    agents,
    seconds: options.seconds,
    quoteInterval: options.quoteInterval,
    warmup: options.warmup,
    tamper: tamperCount(agents, options.tamper),
    expectedEvent: EXPECTED_EVENT,
    databaseUrl: options.databaseUrl,
    imaRate: options.imaRate,
    akAlgorithm: options.akAlgorithm,
    profileDir: options.profileDir === undefined ? undefined : path.join(options.profileDir, 'push'),
    heapProfileDir: options.heapProfileDir === undefined ? undefined : path.join(options.heapProfileDir, 'push'),
    signal,
    spawn: async (dataDir, schema) => {
      const started = await spawnVerifiers({
        count: 1,
        dataDir,
        schema,
        databaseUrl: options.databaseUrl,
        quoteInterval: options.quoteInterval,
        childFlag: CHILD_FLAG,
        ...(main === undefined ? {} : { mains: [main] }),
      });
      return {
        url: started.url,
        cpuSeconds: () => childrenCpuSeconds(started),
        startProfile: () => startProfiles(started),
        stopProfile: (dir) => stopProfiles(started, dir),
        startHeapProfile: () => startHeapProfiles(started),
        stopHeapProfile: async (dir) => (await stopHeapProfiles(started, dir))[0] ?? 0,
        stop: () => stopVerifiers(started),
      };
    },
  });
}

/** The push verifier's CPU per passing attestation of a window, in ms (NaN without one). */
function pushCpuMs(window: PushWindow, seconds: number): number {
  return window.attestations === 0 ? NaN : (window.verifierCpu * seconds * 1000) / window.attestations;
}

/**
 * `--push-only`: the push windows alone, no pull window before them (issue 13's A/B of push code). With
 * `--builds DIR,DIR…`, one window per build at each size, one after the other in the order given, each
 * with its own fleet of this build and its verifier child running that build's `dist/bench/main.js`.
 */
async function pushWindowsOnly(options: BenchArgs, signal: AbortSignal): Promise<void> {
  const builds = options.builds ?? [undefined];
  const fleetLines: string[] = [];
  process.stdout.write(`\n| agents | build | push CPU/attestation | push attestations/s | push failures (untampered) | push tampered / detected |\n|---|---|---|---|---|---|\n`);
  for (const agents of options.agents) {
    for (const build of builds) {
      const window = await pushWindow(agents, options, build === undefined ? undefined : path.join(build, 'dist', 'bench', 'main.js'), signal);
      const pushMs = pushCpuMs(window, options.seconds);
      process.stdout.write(
        `| ${agents} | ${build ?? 'this build'} | ${Number.isNaN(pushMs) ? '-' : `${pushMs.toFixed(3)} ms`} | ${(window.attestations / options.seconds).toFixed(1)} | ${window.failures} | ${window.tampered} / ${window.detected} |\n`,
      );
      fleetLines.push(pushFleetLine(agents, options.seconds, options.quoteInterval, window));
      if (options.heapProfileDir !== undefined && window.heapBytes !== undefined) {
        fleetLines.push(pushHeapAllocationText(path.join(options.heapProfileDir, 'push', 'verifier-0.heapprofile'), window.heapBytes, window.attestations));
      }
    }
  }
  process.stdout.write(`\n${fleetLines.join('\n')}\n`);
}

/**
 * Whether the cap, not the machine, held each capped process back in the window: its share of a core
 * against the cap, and how long the kernel throttled it. A process well under its cap that was hardly
 * throttled was held back by the machine (the fleet or PostgreSQL), and its attestations/s is not its capacity.
 */
function printCaps(cap: number, before: CpuReading, after: CpuReading): void {
  const seconds = (after.atMs - before.atMs) / 1000;
  const each = after.capped.map((reading, i) => {
    // A child that exited reads 0 s: its share is unknown, not negative.
    if (reading.cpuSeconds === 0) return { share: 0, text: 'exited' };
    const share = (100 * (reading.cpuSeconds - (before.capped[i]?.cpuSeconds ?? 0))) / seconds;
    const throttled = (reading.throttledMs - (before.capped[i]?.throttledMs ?? 0)) / 1000;
    return { share, text: `${share.toFixed(1)} % (throttled ${throttled.toFixed(1)} s, summed over the CPUs it ran on)` };
  });
  const below = each.some(({ share }) => share < 0.9 * cap);
  process.stdout.write(
    `capped verifier processes, share of a core in the window: ${each.map(({ text }) => text).join(', ')}; cap ${cap} %${below ? ' — a process below 90 % of its cap: the machine, not the cap, held it back' : ''}\n`,
  );
}

/** Child mode: a verifier on the given schema until SIGTERM; prints `VERIFIER <url>` when listening. */
async function serveVerifier(args: readonly string[]): Promise<void> {
  const value = (flag: string): string => args[args.indexOf(flag) + 1] ?? '';
  const dataDir = value('--data-dir');
  const database = await createDatabase({ url: value('--database'), dataDir, searchPath: value('--schema') });
  const verifier = await startVerifier(
    { dataDir, port: 0, quoteInterval: Number(value('--quote-interval')), instanceId: value('--instance-id') },
    { database, logger: pino({ level: 'warn' }, destination(2)) },
  );
  serveProfileCommands();
  process.stdout.write(`VERIFIER ${verifier.url}\n`);
  // The benchmark holds our stdin open and ends it to stop us; if the benchmark dies, stdin ends too.
  process.stdin.once('end', () => process.kill(process.pid, 'SIGTERM'));
  process.stdin.resume();
  await runUntilSignal([verifier, database]);
  process.stdin.destroy();
}

/**
 * `--heap-profile`: each child's decided rounds so far (read before its sampling starts, so the
 * `/metrics` scrape is not sampled), then its sampling heap profiler started.
 */
async function startHeapWindow(children: VerifierProcesses, dataDir: string): Promise<number[]> {
  const rounds = await Promise.all(children.urls.map((url) => decidedRounds(url, dataDir)));
  await startHeapProfiles(children);
  return rounds;
}

/** Stops the children's heap profilers, then reads their decided rounds again; one line per child (`heapAllocationText`). */
async function stopHeapWindow(children: VerifierProcesses, dataDir: string, dir: string, roundsBefore: readonly number[]): Promise<string> {
  const bytes = await stopHeapProfiles(children, dir);
  const roundsAfter = await Promise.all(children.urls.map((url) => decidedRounds(url, dataDir)));
  return heapAllocationText(
    dir,
    bytes.map((sampled, i) => ({ bytes: sampled, rounds: (roundsAfter[i] ?? 0) - (roundsBefore[i] ?? 0) })),
  );
}

/**
 * Bytes allocated per decided round, one line per verifier process: the bytes its sampling heap profile
 * stands for (V8's estimate of every allocation on its heap while sampling, objects collected since
 * included; not Buffers' memory outside the heap), divided by the pass and fail rounds it decided between
 * two `/metrics` readings just outside the sampling.
 */
function heapAllocationText(dir: string, each: readonly { readonly bytes: number; readonly rounds: number }[]): string {
  return each
    .map(({ bytes, rounds }, i) => {
      const perRound = rounds === 0 ? 'no round decided' : `${(bytes / rounds / 1024).toFixed(1)} KiB per decided round`;
      return `heap profile ${path.join(dir, `verifier-${i}.heapprofile`)}: ${(bytes / 2 ** 20).toFixed(1)} MiB allocated in the window, ${rounds} rounds, ${perRound}\n`;
    })
    .join('');
}

/**
 * `--heap-profile` with `--push`: the push verifier's bytes allocated in the window per push attestation,
 * over the same count as its CPU per attestation (the passing verdicts stored in the window).
 */
function pushHeapAllocationText(file: string, bytes: number, attestations: number): string {
  const perAttestation = attestations === 0 ? 'no attestation' : `${(bytes / attestations / 1024).toFixed(1)} KiB per push attestation`;
  return `push heap profile ${file}: ${(bytes / 2 ** 20).toFixed(1)} MiB allocated in the window, ${attestations} attestations, ${perAttestation}`;
}

/** CPU used so far, read at one instant: the verifier children's (each, and with its cgroup's throttled time when capped) and this process's, the fleet's. */
interface CpuReading {
  readonly atMs: number;
  readonly verifier: number;
  readonly fleet: number;
  readonly capped: readonly { readonly cpuSeconds: number; readonly throttledMs: number }[];
}

/**
 * Each child's CPU and decided rounds so far (`--builds`). The `/metrics` scrape costs each child some
 * CPU: at the window's start it is read before the CPU, at its end after (`end`), so no scrape is counted.
 */
async function readBuilds(children: VerifierProcesses | undefined, dataDir: string, end: boolean): Promise<BuildReading[]> {
  const scrape = (): Promise<number[]> => Promise.all((children?.urls ?? []).map((url) => decidedRounds(url, dataDir)));
  const cpuAtEnd = end ? eachChildCpuSeconds(children) : undefined;
  const rounds = await scrape();
  const cpu = cpuAtEnd ?? eachChildCpuSeconds(children);
  return rounds.map((count, i) => ({ rounds: count, cpuSeconds: cpu[i] ?? 0 }));
}

function cpuReading(children: VerifierProcesses | undefined): CpuReading {
  const usage = process.cpuUsage();
  const each = eachChildCpuSeconds(children);
  return {
    atMs: Date.now(),
    verifier: each.reduce((sum, seconds) => sum + seconds, 0),
    fleet: (usage.user + usage.system) / 1e6,
    // Every child gets its limit when capped, so the i-th limit is the i-th child's.
    capped: (children?.limits ?? []).map((limit, i) => ({ cpuSeconds: each[i] ?? 0, throttledMs: limit.throttledMs() })),
  };
}

/** Most `--verifiers` processes: each is a whole verifier (~100 MiB); more than this forks a machine to a halt, not a benchmark. */
const MAX_VERIFIERS = 32;

/** `--verifiers`: an integer from 1 to MAX_VERIFIERS (a huge one forked without limit, 0 or 2.4 were rounded silently). */
function verifierCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_VERIFIERS) {
    throw new BenchmarkUsageError(`--verifiers: must be an integer from 1 to ${MAX_VERIFIERS}`);
  }
  return count;
}

function parseArgs(args: readonly string[]): BenchArgs {
  const value = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : args[i + 1];
  };
  const number = (flag: string, fallback: number): number => {
    const text = value(flag);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(parsed) || parsed < 0) {
      throw new BenchmarkUsageError(`${flag}: must be a non-negative number`);
    }
    return parsed;
  };
  const agents = (value('--agents') ?? '100').split(',').map(Number);
  if (agents.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new BenchmarkUsageError('--agents: must be a positive integer or a comma-separated list of them');
  }
  const tamper = value('--tamper');
  const profileDir = value('--profile');
  const heapProfileDir = value('--heap-profile');
  if (args.includes('--heap-profile') && (heapProfileDir === undefined || heapProfileDir === '' || heapProfileDir.startsWith('--'))) {
    throw new BenchmarkUsageError('--heap-profile: needs a directory');
  }
  if (heapProfileDir !== undefined && (args.includes('--in-process') || profileDir !== undefined)) {
    // In process there is no child to sample; and the CPU profile would carry the sampler's own cost.
    throw new BenchmarkUsageError('--heap-profile: not with --in-process or --profile');
  }
  const cpuLimit = value('--cpu-limit');
  const cpuLimitPercent = cpuLimit === undefined ? undefined : number('--cpu-limit', 0);
  if (cpuLimitPercent !== undefined) {
    // Asked before any fleet is set up. The push window and an in-process verifier are not capped, and
    // their figures would be set beside capped ones unlabelled.
    const problem = cpuLimitProblem(cpuLimitPercent) ?? (args.includes('--in-process') || args.includes('--push') ? '--cpu-limit: not with --in-process or --push' : undefined);
    if (problem !== undefined) throw new BenchmarkUsageError(problem);
  }
  const pushOnly = args.includes('--push-only');
  if (pushOnly && (args.includes('--push') || args.includes('--in-process') || args.includes('--verifiers') || args.includes('--cpu-limit'))) {
    throw new BenchmarkUsageError('--push-only: not with --push, --in-process, --verifiers or --cpu-limit');
  }
  const builds = value('--builds')?.split(',').map((build) => path.resolve(build));
  if (builds !== undefined && (builds.length < 2 || args.includes('--in-process') || args.includes('--push') || args.includes('--verifiers'))) {
    throw new BenchmarkUsageError('--builds: two or more checkouts, and not with --in-process, --push or --verifiers');
  }
  if (pushOnly && builds !== undefined && heapProfileDir !== undefined) {
    // A push child of an older build ignores the commands, and the window's end would wait for its answer for good.
    throw new BenchmarkUsageError('--heap-profile: not with --push-only and --builds');
  }
  const akAlgorithm = value('--ak') ?? 'ecc';
  if (akAlgorithm !== 'ecc' && akAlgorithm !== 'rsa') throw new BenchmarkUsageError('--ak: must be ecc or rsa');
  return {
    agents,
    seconds: number('--seconds', 30),
    quoteInterval: number('--quote-interval', 2),
    tamper: tamper === undefined ? undefined : number('--tamper', 0),
    imaRate: number('--ima-rate', 3),
    warmup: number('--warmup', DEFAULT_WARMUP_SECONDS),
    inProcess: args.includes('--in-process'),
    push: args.includes('--push'),
    pushOnly,
    profileDir: profileDir === undefined ? undefined : path.resolve(profileDir),
    heapProfileDir: heapProfileDir === undefined ? undefined : path.resolve(heapProfileDir),
    databaseUrl: value('--database') ?? process.env['IRONLIME_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test',
    verifiers: builds?.length ?? verifierCount(number('--verifiers', 1)),
    cpuLimitPercent,
    akAlgorithm,
    builds,
  };
}
