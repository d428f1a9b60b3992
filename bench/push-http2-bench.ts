import { fork, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Benchmark } from './benchmark.js';
import { BenchmarkUsageError } from './benchmark.js';
import { BENCH_TOKEN, CAPABILITIES_BODY, EVIDENCE_BODY } from './push-http2-bodies.js';

type Mode = 'h1' | 'h2';

interface ServerReply {
  readonly cpu?: NodeJS.CpuUsage;
  readonly protocols?: Readonly<Record<string, number>>;
  readonly ready?: { readonly url: string; readonly caCert: string };
}

interface Window {
  readonly mode: Mode;
  readonly attestations: number;
  readonly serverCpuMs: number;
  readonly clientCpuMs: number;
  readonly failures: number;
  readonly protocols: Readonly<Record<string, number>>;
}

const JSON_API = 'application/vnd.api+json';
const AGENT_ID = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';

/**
 * `npm run bench -- push-http2 [--agents 200] [--interval 1] [--seconds 10] [--rounds 3] [--warmup 5]`:
 * is a push attestation cheaper for the verifier over HTTP/2 than over HTTP/1.1 keep-alive? Two
 * servers (`push-http2-server.ts`: the verifier's TLS service and its real push routes, from memory
 * behind them), one offering HTTP/1.1 only (as today), one offering HTTP/2 beside it; `agents`
 * simulated push agents in this process, each with its own connection (undici, as `PushHttp`; with
 * `allowH2` against the second), each sending phase 1 and phase 2 every `interval` seconds. Windows
 * alternate A B B A so the host's drift falls on both; each reports the server process's CPU per
 * attestation (its `process.cpuUsage`), the clients' and the protocols the server saw. With
 * `IRONLIME_BENCH_PROFILE=DIR`, each server writes its V8 CPU profile (`DIR/push-h1.cpuprofile`, `push-h2`).
 */
export const pushHttp2Benchmark: Benchmark = {
  name: 'push-http2',
  description: 'push routes over HTTP/1.1 keep-alive vs HTTP/2: verifier CPU per attestation',
  async run(args) {
    const agents = option(args, '--agents', 200, true);
    const interval = option(args, '--interval', 1);
    const seconds = option(args, '--seconds', 10);
    const rounds = option(args, '--rounds', 3, true);
    const warmup = option(args, '--warmup', 5);
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-http2-'));
    // Each server's V8 CPU profile, start-up and warm-ups included, written when it exits.
    const profileDir = process.env['IRONLIME_BENCH_PROFILE'];
    const children: ChildProcess[] = [];
    try {
      const servers = new Map<Mode, { child: ChildProcess; url: string; caCert: string }>();
      for (const mode of ['h1', 'h2'] as const) {
        const execArgv = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=push-${mode}.cpuprofile`];
        const child = fork(path.join(import.meta.dirname, 'push-http2-server.js'), [path.join(dir, mode), mode], { stdio: 'inherit', execArgv });
        children.push(child);
        const { ready } = await nextReply(child, 'ready');
        servers.set(mode, { child, url: ready!.url, caCert: ready!.caCert });
      }
      process.stdout.write(`${agents} agents, one attestation each every ${interval} s, ${seconds} s windows after ${warmup} s of warm-up, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, ${new Date().toISOString()}\n`);
      const results: Window[] = [];
      for (let round = 0; round < rounds; round++) {
        const order: Mode[] = round % 2 === 0 ? ['h1', 'h2'] : ['h2', 'h1'];
        for (const mode of order) {
          const server = servers.get(mode)!;
          const result = await runWindow(mode, server.child, server.url, server.caCert, { agents, interval, seconds, warmup });
          results.push(result);
          process.stdout.write(`${describe(result)}\n`);
        }
      }
      for (const mode of ['h1', 'h2'] as const) {
        const mine = results.filter((result) => result.mode === mode);
        const attestations = mine.reduce((sum, result) => sum + result.attestations, 0);
        const cpu = mine.reduce((sum, result) => sum + result.serverCpuMs, 0);
        process.stdout.write(`${mode} overall: ${attestations} attestations, server ${((cpu * 1000) / attestations).toFixed(1)} µs per attestation\n`);
      }
      process.stdout.write(`load at the end ${loadavg().map((l) => l.toFixed(2)).join(' ')}, ${new Date().toISOString()}\n`);
    } finally {
      for (const child of children) child.send('stop');
      await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)))));
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function option(args: readonly string[], name: string, fallback: number, whole = false): number {
  const at = args.indexOf(name);
  if (at === -1) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value <= 0 || (whole && !Number.isInteger(value))) {
    throw new BenchmarkUsageError(`${name} must be a positive ${whole ? 'whole ' : ''}number, not ${args[at + 1]}`);
  }
  return value;
}

function describe(result: Window): string {
  const per = (ms: number): string => `${((ms * 1000) / result.attestations).toFixed(1)} µs`;
  const protocols = Object.entries(result.protocols)
    .map(([version, count]) => `HTTP/${version} ${count}`)
    .join(', ');
  return `${result.mode}: ${result.attestations} attestations, server ${per(result.serverCpuMs)} per attestation, clients ${per(result.clientCpuMs)}, ${result.failures} failed; requests seen: ${protocols}`;
}

interface WindowSettings {
  readonly agents: number;
  readonly interval: number;
  readonly seconds: number;
  readonly warmup: number;
}

async function runWindow(mode: Mode, child: ChildProcess, url: string, caCert: string, settings: WindowSettings): Promise<Window> {
  const stop = new AbortController();
  // Every agent's wait listens on it.
  setMaxListeners(settings.agents + 10, stop.signal);
  let counting = false;
  let attestations = 0;
  let failures = 0;
  const dispatchers = Array.from({ length: settings.agents }, () => new Agent({ connect: { ca: caCert }, allowH2: mode === 'h2', connections: 1 }));
  const loops = dispatchers.map(async (dispatcher, i) => {
    await sleep((settings.interval * 1000 * i) / settings.agents);
    while (!stop.signal.aborted) {
      const started = Date.now();
      try {
        await attest(url, dispatcher);
        if (counting) attestations++;
      } catch (error) {
        if (failures === 0) process.stderr.write(`${mode}: first failure: ${String(error)}\n`);
        if (counting) failures++;
      }
      const wait = settings.interval * 1000 - (Date.now() - started);
      if (wait > 0) await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
    }
  });
  await sleep(settings.warmup * 1000);
  const before = await nextReply(child, 'cpu');
  const clientBefore = process.cpuUsage();
  counting = true;
  await sleep(settings.seconds * 1000);
  counting = false;
  const after = await nextReply(child, 'cpu');
  const client = process.cpuUsage(clientBefore);
  stop.abort();
  await Promise.all(loops);
  await Promise.all(dispatchers.map((dispatcher) => dispatcher.close()));
  const protocols: Record<string, number> = {};
  for (const [version, count] of Object.entries(after.protocols ?? {})) protocols[version] = count - (before.protocols?.[version] ?? 0);
  return {
    mode,
    attestations,
    failures,
    serverCpuMs: (after.cpu!.user + after.cpu!.system - before.cpu!.user - before.cpu!.system) / 1000,
    clientCpuMs: (client.user + client.system) / 1000,
    protocols,
  };
}

/** Phase 1 then phase 2 at the `Location` phase 1 named, both answers read in full, as `PushHttp` does. */
async function attest(url: string, dispatcher: Agent): Promise<void> {
  const headers = { accept: JSON_API, 'content-type': JSON_API, authorization: `Bearer ${BENCH_TOKEN}` };
  const created = await request(new URL(`/v3.0/agents/${AGENT_ID}/attestations`, url), { method: 'POST', headers, body: CAPABILITIES_BODY, dispatcher });
  await created.body.text();
  if (created.statusCode !== 201) throw new Error(`phase 1 answered ${created.statusCode}`);
  const location = String(created.headers['location']);
  const evidence = await request(new URL(location, url), { method: 'PATCH', headers, body: EVIDENCE_BODY, dispatcher });
  await evidence.body.text();
  if (evidence.statusCode !== 202) throw new Error(`phase 2 answered ${evidence.statusCode}`);
}

function nextReply(child: ChildProcess, what: 'ready' | 'cpu'): Promise<ServerReply> {
  if (what === 'cpu') child.send('cpu');
  return new Promise((resolve, reject) => {
    const onMessage = (message: ServerReply): void => {
      if (what in message) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message);
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`push-http2 server exited (${code}) before answering ${what}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
