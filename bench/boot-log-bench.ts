import { hash } from 'node:crypto';
import path from 'node:path';
import { createRefstate } from '../lib/mb/create-refstate.js';
import { evaluateMbPolicy } from '../lib/mb/evaluate-mb-policy.js';
import type { MbRefstate } from '../lib/mb/mb-refstate.js';
import { MAX_EVENT_LOG_BYTES, MAX_EVENT_LOG_EVENTS, parseEventLog } from '../lib/mb/parse-event-log.js';
import { parseEventLogInput } from '../lib/mb/event-log-input.js';
import { verifyReplay, type QuotedPcrs } from '../lib/mb/verify-replay.js';
import { grownBootLogOfEvents, REAL_BOOT_LOG } from '../test/mb/huge-boot-log.js';
import { SELF_REFSTATE_LOGS, selfQuote, vectorBytes } from '../test/mb/mb-vectors.js';
import { BenchmarkUsageError, type Benchmark } from './benchmark.js';

/**
 * `npm run bench -- boot-log [--rounds N] [--builds A,B]`: the CPU of the whole measured-boot check
 * (`checkMeasuredBoot`: parse, replay, the verified log's digest checks, the refstate's policy) per
 * event of the log, on two inputs, each quoted by its own sha256 replay and judged against a refstate
 * it passes:
 *
 * - the real logs of the shared vectors a refstate can be made from (`SELF_REFSTATE_LOGS`, 15–160
 *   events each), the refstate made from each;
 * - the log at the parser's bound (`MAX_EVENT_LOG_EVENTS`): rust-keylime's real log grown by one of
 *   its PCR 9 events repeated (the tests' `grownBootLogOfEvents`), the refstate of the real log.
 *
 * `--builds` names repositories whose `dist/` is built (default: this one): each build's
 * `checkMeasuredBoot` runs on the same inputs, alternated round after round in this one process, so
 * that the host's load falls on all alike; each build's median and the median of its ratio to the
 * first build per round are printed. Then, with this build, the check's stages apart at the bound, and
 * SHA-256/SHA-384 of `MAX_EVENT_LOG_BYTES` (one event's data can be that long). Times are CPU time of
 * this process (`process.cpuUsage`, GC included). Reads the vectors beside the repository, as the tests do.
 */

type CheckModule = typeof import('../lib/mb/check-measured-boot.js');

interface BenchLog {
  readonly bytes: Uint8Array;
  readonly quotedPcrs: QuotedPcrs;
  readonly refstate: MbRefstate;
  readonly events: number;
}

interface Input {
  readonly name: string;
  readonly logs: readonly BenchLog[];
  readonly events: number;
}

function benchLog(bytes: Uint8Array, refstate?: MbRefstate, withoutSecureBoot = true): BenchLog {
  const log = parseEventLogInput(bytes);
  return { bytes, quotedPcrs: selfQuote(log), refstate: refstate ?? createRefstate(log, { withoutSecureBoot }), events: log.events.length };
}

function input(name: string, logs: readonly BenchLog[]): Input {
  return { name, logs, events: logs.reduce((sum, log) => sum + log.events, 0) };
}

function inputs(): Input[] {
  const real = SELF_REFSTATE_LOGS.map(({ parts, secureBoot }) => benchLog(vectorBytes(...parts), undefined, !secureBoot));
  const boundRefstate = createRefstate(parseEventLog(REAL_BOOT_LOG), { withoutSecureBoot: true });
  return [
    input(`${real.length} real logs`, real),
    input(`${MAX_EVENT_LOG_EVENTS} events (the bound)`, [benchLog(grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS), boundRefstate)]),
  ];
}

/** CPU µs of `work`, user and system. */
function cpu(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

/** µs of CPU per event for one pass of `check` over every log of `input`; throws unless each passes. */
function perEvent(check: CheckModule['checkMeasuredBoot'], input: Input): number {
  return cpu(() => {
    for (const log of input.logs) {
      const result = check({ eventLog: log.bytes, quotedPcrs: log.quotedPcrs, refstate: log.refstate });
      if (!result.passed) throw new Error(`bench log failed: ${JSON.stringify(result.failures[0])}`);
    }
  }) / input.events;
}

function options(args: readonly string[]): { rounds: number; builds: string[] } {
  let rounds = 15;
  let builds = [path.resolve(import.meta.dirname, '..', '..')];
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === '--rounds') {
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1) throw new BenchmarkUsageError('--rounds: must be an integer from 1');
    } else if (flag === '--builds' && value !== undefined && value !== '') {
      builds = value.split(',').map((b) => path.resolve(b));
    } else {
      throw new BenchmarkUsageError(`boot-log [--rounds N] [--builds A,B]: unexpected "${flag ?? ''}"`);
    }
  }
  return { rounds, builds };
}

/** The stages of the check apart, with this build: parse, replay and verified log, policy. */
function stages(log: BenchLog, rounds: number): string {
  const times: number[][] = [[], [], []];
  for (let i = 0; i < rounds; i++) {
    let parsed = parseEventLog(log.bytes);
    times[0]?.push(cpu(() => { parsed = parseEventLog(log.bytes); }));
    let replay = verifyReplay(parsed, log.quotedPcrs);
    times[1]?.push(cpu(() => { replay = verifyReplay(parsed, log.quotedPcrs); }));
    const verified = replay.verifiedLog;
    if (verified === null) throw new Error('bench log: nothing verified');
    times[2]?.push(cpu(() => { evaluateMbPolicy(verified, log.refstate); }));
  }
  const [parse = 0, replay = 0, policy = 0] = times.map((t) => median(t) / log.events);
  return `stages at the bound, this build: parse ${parse.toFixed(2)}, replay and verified log ${replay.toFixed(2)}, policy ${policy.toFixed(2)} µs CPU/event`;
}

function bigHashes(rounds: number): string {
  const data = Buffer.alloc(MAX_EVENT_LOG_BYTES, 0x5a);
  const ms = (alg: string): string => (median(Array.from({ length: rounds }, () => cpu(() => hash(alg, data)))) / 1000).toFixed(1);
  return `one event's data at the ${MAX_EVENT_LOG_BYTES / 1024 / 1024} MiB bound, hashed once: SHA-256 ${ms('sha256')} ms, SHA-384 ${ms('sha384')} ms CPU`;
}

export const bootLogBenchmark: Benchmark = {
  name: 'boot-log',
  description: 'measured-boot check (parse, replay, verified log, refstate) per event: the real vectors and a log at the 10,000-event bound; --builds A,B alternated',
  async run(args) {
    const { rounds, builds } = options(args);
    const checks = await Promise.all(
      builds.map(async (build) => ((await import(path.join(build, 'dist', 'lib', 'mb', 'check-measured-boot.js'))) as CheckModule).checkMeasuredBoot),
    );
    const lines: string[] = [];
    const all = inputs();
    for (const item of all) {
      for (let i = 0; i < 3; i++) for (const check of checks) perEvent(check, item);
      const times = checks.map((): number[] => []);
      const ratios = checks.map((): number[] => []);
      for (let i = 0; i < rounds; i++) {
        const round = checks.map((check) => perEvent(check, item));
        round.forEach((t, b) => {
          times[b]?.push(t);
          ratios[b]?.push(t / (round[0] ?? t));
        });
      }
      lines.push(`${item.name}, ${item.events} events, medians of ${rounds} alternated rounds:`);
      builds.forEach((build, b) => {
        lines.push(`  build ${b} ${build}: ${median(times[b] ?? []).toFixed(2)} µs CPU/event (${median(ratios[b] ?? []).toFixed(3)}× build 0)`);
      });
    }
    const bound = all[1]?.logs[0];
    if (bound !== undefined) lines.push(stages(bound, rounds));
    lines.push(bigHashes(rounds));
    process.stdout.write(`${lines.join('\n')}\n`);
  },
};
