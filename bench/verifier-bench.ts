import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import knexFactory, { type Knex } from 'knex';
import { destination, pino } from 'pino';
import { createDatabase } from '../lib/db/database-factory.js';
import { startFleet } from '../lib/fleet/fleet.js';
import { analyseRoundTiming, type Percentiles, type RoundRecord, type RoundTimingReport } from '../lib/fleet/round-timing.js';
import { runUntilSignal } from '../lib/http/service-lifecycle.js';
import { startVerifier } from '../lib/verifier/verifier-server.js';
import { TerminalProgress } from '../lib/cli/terminal-progress.js';
import { writeVerifierRunFiles } from './verifier-bench-output.js';
import type { Benchmark } from './benchmark.js';

/**
 * `npm run bench -- verifier --agents 100,250,500,1000 [--seconds 60] [--quote-interval 2]`: one
 * verifier polling a simulated fleet (`lib/fleet`) for a fixed window; see docs/fleet.md for the
 * method. The verifier runs in a child process (`--in-process` puts it beside the fleet), on
 * PostgreSQL in a fresh schema that is dropped afterwards (`--database`, default the test server).
 * `--profile DIR` writes the verifier's V8 CPU profile there.
 */

interface BenchArgs {
  readonly agents: number[];
  readonly seconds: number;
  readonly quoteInterval: number;
  readonly tamper: number | undefined;
  readonly imaRate: number;
  readonly inProcess: boolean;
  readonly profileDir: string | undefined;
  readonly databaseUrl: string;
}

const EXPECTED_EVENT = 'ima.validation.ima-ng.not_in_allowlist';
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
    for (const agents of options.agents) {
      const { report, cpu } = await runOnce(agents, options);
      results.push({ agents, report, cpu });
    }
    if (results.length > 1) {
      process.stdout.write(`\n| agents | attestations/s | late rounds | detection p50 / p99 (s) | ${'CPU'.padEnd(8)} |\n|---|---|---|---|---|\n`);
      for (const { agents, report, cpu } of results) {
        process.stdout.write(`| ${agents} | ${report.attestationsPerSecond.toFixed(1)} | ${lateText(report)} | ${detectionText(report.detectionMs)} | ${cpu} |\n`);
      }
    }
  },
};

async function runOnce(agents: number, options: BenchArgs): Promise<{ report: RoundTimingReport; cpu: string }> {
  const schema = `bench_verifier_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: options.databaseUrl, pool: { min: 0, max: 1 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-verifier-bench-'));
  const log = pino({ level: 'warn' }, destination(2));
  let child: ChildProcess | undefined;
  await admin.raw('create schema ??', [schema]);
  try {
    const database = { databaseUrl: options.databaseUrl, databaseSchema: schema };
    let verifierUrl: string | undefined;
    if (!options.inProcess) {
      const started = await spawnVerifier(dataDir, schema, options);
      child = started.child;
      verifierUrl = started.url;
    }
    const setupStart = Date.now();
    const enrolling = new TerminalProgress(`enrolling ${agents} agents`);
    const fleet = await startFleet({
      agents,
      dataDir,
      ...database,
      quoteInterval: options.quoteInterval,
      imaEntriesPerMinute: options.imaRate,
      startConcurrency: 16,
      deregisterOnClose: false,
      logger: log,
      enrolled: (done, total) => enrolling.update(done, total),
      ...(verifierUrl === undefined ? {} : { verifierUrl }),
    });
    enrolling.finish();
    try {
      const setupSeconds = (Date.now() - setupStart) / 1000;
      // Let the last enrolled agents settle into their rhythm before measuring.
      await sleep((2 * options.quoteInterval + 2) * 1000);
      const cpuBefore = cpuSeconds(child);
      const from = Date.now();
      const to = from + options.seconds * 1000;
      const tampered = await tamperDuringWindow(fleet.agents, options.tamper ?? Math.min(50, Math.max(1, Math.round(agents * 0.05))), from, options.seconds);
      await sleep(to - Date.now());
      const cpuAfter = cpuSeconds(child);
      // Detections of late tamperings land after the window: wait for them before reading.
      await sleep((3 * options.quoteInterval + 3) * 1000);
      const requestTimes = new Map(fleet.agents.map((agent) => [agent.uuid, agent.quoteRequests]));
      const report = analyseRoundTiming({
        rounds: await readHistory(admin, schema, from - 5 * options.quoteInterval * 1000),
        requestTime: (agentId, nonce) => requestTimes.get(agentId)?.get(nonce),
        quoteIntervalSeconds: options.quoteInterval,
        from,
        to,
        tampered,
        expectedEvent: EXPECTED_EVENT,
      });
      const verifierCpu = (cpuAfter.verifier - cpuBefore.verifier) / options.seconds;
      const fleetCpu = (cpuAfter.fleet - cpuBefore.fleet) / options.seconds;
      // CPU time per passing round does not depend on how busy the machine is, unlike the rates.
      const perRound = (share: number): string => (report.attestations === 0 ? '-' : `${((share * options.seconds * 1000) / report.attestations).toFixed(1)} ms`);
      const cpu = options.inProcess
        ? `${pct(fleetCpu)} verifier and fleet together (${perRound(fleetCpu)} per attestation)`
        : `${pct(verifierCpu)} verifier (${perRound(verifierCpu)} per attestation) / ${pct(fleetCpu)} fleet`;
      printReport(agents, options, setupSeconds, report, cpu);
      const files = await writeVerifierRunFiles({ agents, quoteInterval: options.quoteInterval, from, to, report, cpu });
      process.stdout.write(`figures: ${files.json}, plot: ${files.svg}\n`);
      return { report, cpu };
    } finally {
      await fleet.close();
    }
  } finally {
    if (child !== undefined) {
      await stopChild(child);
    }
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Tampers `count` random agents at random times in the first 60% of the window; resolves to agent → time. */
async function tamperDuringWindow(
  agents: readonly { uuid: string; tamper(): Promise<number> }[],
  count: number,
  from: number,
  seconds: number,
): Promise<Map<string, number>> {
  const chosen = [...agents].sort(() => Math.random() - 0.5).slice(0, Math.min(count, agents.length));
  const tampered = new Map<string, number>();
  const plan = chosen.map((agent) => ({ agent, at: from + (0.1 + 0.5 * Math.random()) * seconds * 1000 }));
  plan.sort((a, b) => a.at - b.at);
  void (async () => {
    for (const { agent, at } of plan) {
      await sleep(at - Date.now());
      tampered.set(agent.uuid, await agent.tamper());
    }
  })().catch((error: unknown) => process.stderr.write(`tampering stopped: ${String(error)}\n`));
  return tampered;
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

function printReport(agents: number, options: BenchArgs, setupSeconds: number, report: RoundTimingReport, cpu: string): void {
  const ideal = agents / options.quoteInterval;
  const lines = [
    `-- ${agents} agents, quote_interval ${options.quoteInterval} s, window ${options.seconds} s, verifier ${options.inProcess ? 'in-process' : 'in a child process'} on PostgreSQL (fleet set up in ${setupSeconds.toFixed(0)} s)`,
    `attestations: ${report.attestations} = ${report.attestationsPerSecond.toFixed(1)}/s (one per agent per interval would be at most ${ideal.toFixed(1)}/s)`,
    `late rounds (start > 10% of quote_interval after due): ${lateText(report)}; start delay p50 / p99 / max: ${ms(report.startDelayMs)}; untimed ${report.untimedRounds}`,
    `tampered ${report.tampered}: detected ${report.detected} with ${EXPECTED_EVENT}; tamper → verdict p50 / p99 / max: ${ms(report.detectionMs)}`,
    `failures of untampered agents: ${report.unexpectedFailures}${report.unexpectedEvents.length > 0 ? ` (${report.unexpectedEvents.join(', ')})` : ''}`,
    `CPU (share of one core): ${cpu}; machine load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    `targets: no late rounds ${report.lateRounds === 0 ? 'MET' : 'MISSED'}; p99 detection < 4 s ${report.detectionMs !== undefined && report.detected === report.tampered && report.detectionMs.p99 < 4000 ? 'MET' : 'MISSED'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Child mode: a verifier on the given schema until SIGTERM; prints `VERIFIER <url>` when listening. */
async function serveVerifier(args: readonly string[]): Promise<void> {
  const value = (flag: string): string => args[args.indexOf(flag) + 1] ?? '';
  const dataDir = value('--data-dir');
  const database = await createDatabase({ url: value('--database'), dataDir, searchPath: value('--schema') });
  const verifier = await startVerifier(
    { dataDir, port: 0, quoteInterval: Number(value('--quote-interval')) },
    { database, logger: pino({ level: 'warn' }, destination(2)) },
  );
  process.stdout.write(`VERIFIER ${verifier.url}\n`);
  // The benchmark holds our stdin open and ends it to stop us; if the benchmark dies, stdin ends too.
  process.stdin.once('end', () => process.kill(process.pid, 'SIGTERM'));
  process.stdin.resume();
  await runUntilSignal([verifier, database]);
  process.stdin.destroy();
}

async function spawnVerifier(dataDir: string, schema: string, options: BenchArgs): Promise<{ child: ChildProcess; url: string }> {
  const profile = options.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir];
  const main = process.argv[1] as string;
  const child = spawn(
    process.execPath,
    [...profile, main, 'verifier', CHILD_FLAG, '--data-dir', dataDir, '--schema', schema, '--database', options.databaseUrl, '--quote-interval', String(options.quoteInterval)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line.startsWith('VERIFIER ')) {
        resolve(line.slice('VERIFIER '.length));
      }
    });
    child.once('exit', (code) => reject(new Error(`the verifier process ended (exit code ${String(code)}) before listening`)));
  });
  return { child, url };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin?.end();
  await exited;
}

/** CPU seconds used so far by the verifier child (from /proc) and by this process. */
function cpuSeconds(child: ChildProcess | undefined): { verifier: number; fleet: number } {
  const usage = process.cpuUsage();
  let verifier = 0;
  if (child?.pid !== undefined) {
    // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, 100 per second on Linux.
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    verifier = (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return { verifier, fleet: (usage.user + usage.system) / 1e6 };
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
      throw new Error(`${flag}: must be a non-negative number`);
    }
    return parsed;
  };
  const agents = (value('--agents') ?? '100').split(',').map(Number);
  if (agents.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error('--agents: must be a positive integer or a comma-separated list of them');
  }
  const tamper = value('--tamper');
  const profileDir = value('--profile');
  return {
    agents,
    seconds: number('--seconds', 30),
    quoteInterval: number('--quote-interval', 2),
    tamper: tamper === undefined ? undefined : number('--tamper', 0),
    imaRate: number('--ima-rate', 3),
    inProcess: args.includes('--in-process'),
    profileDir: profileDir === undefined ? undefined : path.resolve(profileDir),
    databaseUrl: value('--database') ?? process.env['IRONLIME_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test',
  };
}

function lateText(report: RoundTimingReport): string {
  return `${report.lateRounds}/${report.timedRounds} (${report.timedRounds === 0 ? '-' : ((100 * report.lateRounds) / report.timedRounds).toFixed(2)}%)`;
}

function detectionText(p: Percentiles | undefined): string {
  return p === undefined ? '-' : `${(p.p50 / 1000).toFixed(2)} / ${(p.p99 / 1000).toFixed(2)}`;
}

function ms(p: Percentiles | undefined): string {
  return p === undefined ? '-' : `${p.p50.toFixed(0)} / ${p.p99.toFixed(0)} / ${p.max.toFixed(0)} ms`;
}

function pct(share: number): string {
  return `${(share * 100).toFixed(0)}%`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
