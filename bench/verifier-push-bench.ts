import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import knexFactory, { type Knex } from 'knex';
import { destination, pino } from 'pino';
import { startPushFleet, type RunningFleet } from '../lib/fleet/fleet.js';
import type { SimulatedPushAgent } from '../lib/fleet/simulated-push-agent.js';
import type { EkAlgorithm } from '../lib/tpm-access/tpm-port.js';
import { abortableDelay } from '../lib/timing/abortable-delay.js';
import { pushWindowCounts, type PushVerdictRow } from './push-window-counts.js';
import { tamperDuringWindow } from './tamper-window.js';
/** What the push window measured. */
export interface PushWindow {
  /** Passing verdicts stored in the window (the pull bench counts its passing rounds). */
  readonly attestations: number;
  /** Failing verdicts of agents not tampered (or before their tampering). */
  readonly failures: number;
  readonly tampered: number;
  /** Tampered agents whose first failing verdict after their tampering, in the window or just after, named `expectedEvent`. */
  readonly detected: number;
  /** Verifier CPU seconds per second of window (share of one core). */
  readonly verifierCpu: number;
  /** The simulated fleet's (this process's) CPU seconds per second of window. */
  readonly fleetCpu: number;
  /** This process's event-loop delay in the window, ms: the fleet's own lateness in sending. */
  readonly fleetLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** `--heap-profile`: the verifier's bytes allocated on its heap in the window (its sampling heap profile's estimate). */
  readonly heapBytes: number | undefined;
}

export interface PushBenchInput {
  readonly agents: number;
  readonly seconds: number;
  readonly quoteInterval: number;
  /** Seconds the agents attest before the window opens (the pull bench's `--warmup`: the JIT's compiles done). */
  readonly warmup: number;
  /** Agents tampered during the window, at the pull bench's points (`tamperDuringWindow`). */
  readonly tamper: number;
  /** The failure each tampering must be reported with (the pull bench's). */
  readonly expectedEvent: string;
  readonly databaseUrl: string;
  /** Known-good IMA entries per minute per agent (the pull bench's `--ima-rate`). */
  readonly imaRate: number;
  /** The simulated TPMs' AK family (`--ak`). */
  readonly akAlgorithm: EkAlgorithm;
  /** Where the verifier's V8 CPU profile of the window goes (`--profile DIR`: `DIR/push`), if anywhere. */
  readonly profileDir: string | undefined;
  /** Where the verifier's sampling heap profile of the window goes (`--heap-profile DIR`: `DIR/push`), if anywhere. */
  readonly heapProfileDir: string | undefined;
  /** Starts the verifier in a child process on `schema`; resolves to its URL, a CPU reader, its profiler and a stop. */
  readonly spawn: (dataDir: string, schema: string) => Promise<PushBenchVerifier>;
  /** Aborting it (SIGINT) ends the window's waits and the fleet's start: everything is torn down and the window rejects. */
  readonly signal: AbortSignal;
}

export interface PushBenchVerifier {
  readonly url: string;
  cpuSeconds(): number;
  startProfile(): void;
  /** Writes the profile started by `startProfile` into `dir`; resolves once written. */
  stopProfile(dir: string): Promise<void>;
  /** Starts its sampling heap profiler; resolves once it runs. */
  startHeapProfile(): Promise<void>;
  /** Writes the heap profile started by `startHeapProfile` into `dir`; resolves to the bytes it stands for. */
  stopHeapProfile(dir: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * One push window: a verifier in a child process and `agents` simulated push nodes in this process
 * (`startPushFleet`, the nodes of `ironlime fleet --push`: software TPMs, the fleet's boot log, IMA
 * lists and stored policies, the same as the pull bench's fleet), registered at an in-process
 * registrar and enrolled with the tenant's `add --push`, each attesting on the interval the verifier
 * returns. Counts the verdicts stored in the window and the verifier's CPU over it; the window opens
 * once every agent has passed once (its session, whose 600 000-round PBKDF2 runs once per agent, is
 * open by then) and the pull window's warm-up has passed, and as many agents are tampered in it as in
 * the pull window.
 */
export async function runPushWindow(input: PushBenchInput): Promise<PushWindow> {
  const schema = `bench_push_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: input.databaseUrl, pool: { min: 0, max: 1 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-bench-'));
  await admin.raw('create schema ??', [schema]);
  let verifier: PushBenchVerifier | undefined;
  let fleet: RunningFleet<SimulatedPushAgent> | undefined;
  try {
    verifier = await input.spawn(dataDir, schema);
    fleet = await startPushFleet({
      agents: input.agents,
      dataDir,
      databaseUrl: input.databaseUrl,
      databaseSchema: schema,
      verifierUrl: verifier.url,
      quoteInterval: input.quoteInterval,
      imaEntriesPerMinute: input.imaRate,
      akAlgorithm: input.akAlgorithm,
      startConcurrency: 16,
      deregisterOnClose: false,
      logger: pino({ level: 'warn' }, destination(2)),
      signal: input.signal,
    });
    await everyAgentPassed(admin, schema, input.agents, (60 + input.agents) * 1000, input.signal);
    // As long as the pull window's warm-up: a window opened 6 s after the last session found TurboFan
    // still compiling (11 % of the push verifier's CPU in it, perf, 200 agents).
    await abortableDelay(Math.max(2 * input.quoteInterval + 2, input.warmup) * 1000, input.signal);
    if (input.profileDir !== undefined) verifier.startProfile();
    if (input.heapProfileDir !== undefined) await verifier.startHeapProfile();
    const cpuBefore = verifier.cpuSeconds();
    const fleetBefore = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const from = new Date();
    const tampered = await tamperDuringWindow(fleet.agents, input.tamper, from.getTime(), input.seconds, input.signal);
    await abortableDelay(input.seconds * 1000, input.signal);
    const cpuAfter = verifier.cpuSeconds();
    const fleetUsed = process.cpuUsage(fleetBefore);
    loopDelay.disable();
    const to = new Date();
    if (input.profileDir !== undefined) {
      await mkdir(input.profileDir, { recursive: true });
      await verifier.stopProfile(input.profileDir);
    }
    const heapBytes = input.heapProfileDir === undefined ? undefined : await verifier.stopHeapProfile(input.heapProfileDir);
    // Detections of late tamperings land after the window, as in the pull bench.
    await abortableDelay((3 * input.quoteInterval + 3) * 1000, input.signal);
    const rows = (await admin
      .withSchema(schema)
      .table('verifier_attestation_history')
      .select('agent_id', 'outcome', 'attempted_at', 'failures')
      .where('attempted_at', '>=', from)) as PushVerdictRow[];
    return {
      ...pushWindowCounts(rows, tampered, to, input.expectedEvent),
      tampered: tampered.size,
      verifierCpu: (cpuAfter - cpuBefore) / input.seconds,
      fleetCpu: (fleetUsed.user + fleetUsed.system) / 1e6 / input.seconds,
      fleetLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
      heapBytes,
    };
  } finally {
    // The fleet first, unlike the pull bench: a push verifier judges no one who stops sending until its
    // timeout (seconds away), while push agents whose verifier is gone retry and log each refusal.
    await fleet?.close();
    await verifier?.stop();
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Waits until every agent's first attestation passed: its session (a 600 000-round PBKDF2 on the
 * verifier) is then open. Without this wait, at 100 agents and more on the loaded machine, sessions
 * were still being opened in the window, and their hashing counted as attestation CPU.
 */
async function everyAgentPassed(admin: Knex, schema: string, agents: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = (await admin.withSchema(schema).table('verifier_attestation_history').where({ outcome: 'pass' }).countDistinct({ n: 'agent_id' })) as { n: string | number }[];
    const passed = Number(row?.n ?? 0);
    if (passed >= agents) return;
    if (Date.now() > deadline) throw new Error(`only ${passed} of ${agents} push agents passed an attestation in ${timeoutMs / 1000} s`);
    await abortableDelay(1000, signal);
  }
}
