import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { emptyRuntimePolicy } from '../lib/ima/runtime-policy.js';
import { formatQuoteString } from '../lib/tpm/quote-string.js';
import { imaExtendDigest, imaNgEntry } from '../lib/tpm-access/ima-ng-template.js';
import { IMA_PCR } from '../lib/tpm/keylime-profile.js';
import { createSoftwareTpm } from '../lib/tpm-access/software/tpm-adapter.js';
import { defaultEvidenceWorkers } from '../lib/verifier/evidence-worker-pool.js';
import { startVerifier } from '../lib/verifier/verifier-server.js';
import type { Benchmark } from './benchmark.js';
import { runEvidenceLoad } from './evidence-load.js';
import { procStatCpuMs } from './proc-stat-cpu.js';

/**
 * `npm run bench -- evidence [--requests N] [--concurrency C] [--entries E] [--warmup W] [--profile DIR]`:
 * `POST /v2.5/verify/evidence` against a verifier in a child process (its own PGlite data directory;
 * the route does not touch the database), over HTTPS with keep-alive connections, from the cheap
 * generator of evidence-load.ts in this process. The evidence is what a node sends: a software-TPM
 * quote (RSA-2048 AK, sha256 bank) over PCR 10 and an `ima-ng` list of E entries (default 20) with
 * the runtime policy listing them. As from a fleet, every request carries a fresh nonce and quote:
 * the generator cycles through QUOTES bodies, each with its own nonce and quote (a cycle is far
 * longer than anything the verifier could keep; it keeps no quote at all). Reports the verifier's CPU time per request (process.cpuUsage of
 * the child: every thread, the evidence pool's included) and its event-loop thread's share, the
 * generator's CPU per request, and requests/s (wall clock, client and server sharing the machine).
 * W requests (default DEFAULT_WARMUP) go before the measured window. `--profile DIR` profiles the
 * child's event-loop thread during the measured window only.
 */

const CHILD_FLAG = '--serve-evidence-verifier';

/**
 * Requests sent before the measured window. V8 compiles the hot code of each of the verifier's
 * isolates (event loop and pool threads) with TurboFan on its platform threads: after 500 requests
 * those were still compiling, about 0.1 ms per request of the window (perf, 2026-12-03). A verifier
 * that runs for hours pays that once; the window measures what it pays per request after it.
 */
const DEFAULT_WARMUP = 4000;

/** Distinct quotes (and nonces) the generator cycles through. */
const QUOTES = 256;

/** The child's CPU so far: the whole process (every thread, microseconds) and each of its threads (ms by thread id). */
interface ChildCpu extends NodeJS.CpuUsage {
  readonly threadsMs: Readonly<Record<string, number>>;
}

interface ChildReady {
  readonly url: string;
  readonly caCert: string;
}

export const evidenceBenchmark: Benchmark = {
  name: 'evidence',
  description: 'POST /verify/evidence: verifier CPU per request and requests/s',
  async run(args) {
    if (args.includes(CHILD_FLAG)) {
      await serveChild(args);
      return;
    }
    const option = (flag: string, fallback: number): number => {
      const at = args.indexOf(flag);
      return at < 0 ? fallback : Number(args[at + 1]);
    };
    const requests = option('--requests', 4000);
    const concurrency = option('--concurrency', 32);
    const entries = option('--entries', 20);
    const warmup = option('--warmup', DEFAULT_WARMUP);
    const profileAt = args.indexOf('--profile');
    const profileDir = profileAt < 0 ? undefined : path.resolve(args[profileAt + 1] ?? '.');
    if (profileDir !== undefined) {
      await mkdir(profileDir, { recursive: true });
    }
    const bodies = (await makeEvidence(entries, QUOTES)).map((evidence) => JSON.stringify(evidence));
    const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-evidence-bench-'));
    const child = fork(process.argv[1] as string, ['evidence', CHILD_FLAG, '--data-dir', dataDir], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    try {
      const ready = await message<ChildReady>(child, 'ready');
      const target = { url: ready.url, caCert: ready.caCert, path: '/v2.5/verify/evidence', bodies };
      const runLoad = (total: number): Promise<void> => runEvidenceLoad(target, concurrency, total, '"valid":true');
      await runLoad(warmup);
      const idleStart = await message<ChildCpu>(child, 'cpu');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const idleEnd = await message<ChildCpu>(child, 'cpu');
      const idleMsPerS = (idleEnd.user - idleStart.user + idleEnd.system - idleStart.system) / 1000 / 2;
      if (profileDir !== undefined) {
        await message(child, 'profile-start');
      }
      const cpuBefore = await message<ChildCpu>(child, 'cpu');
      const clientBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      await runLoad(requests);
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const clientCpu = process.cpuUsage(clientBefore);
      const cpuAfter = await message<ChildCpu>(child, 'cpu');
      if (profileDir !== undefined) {
        await message(child, 'profile-stop', path.join(profileDir, 'evidence-verifier.cpuprofile'));
      }
      const clientMs = (clientCpu.user + clientCpu.system) / 1000;
      const rawMs = (cpuAfter.user - cpuBefore.user + cpuAfter.system - cpuBefore.system) / 1000;
      // The verifier's own background work (its pull loop's database polls) is not the route's.
      const cpuMs = Math.max(rawMs - idleMsPerS * wallSeconds, 0);
      const threads = threadShares(cpuBefore.threadsMs, cpuAfter.threadsMs, String(child.pid));
      process.stdout.write(
        [
          `evidence: quote over PCR 10 (RSA-2048 AK, sha256), ${entries} ima-ng entries, runtime policy; body ${bodies[0]?.length ?? 0} bytes, ${QUOTES} distinct nonces and quotes`,
          `${requests} requests, ${concurrency} concurrent keep-alive connections, one verifier process`,
          `verifier CPU: ${(cpuMs / requests).toFixed(3)} ms/request (${(rawMs / requests).toFixed(3)} before subtracting its idle ${idleMsPerS.toFixed(1)} ms/s) → ${(requests / (cpuMs / 1000)).toFixed(0)} requests per CPU-second`,
          `of which the event-loop thread (TLS, HTTP, routing): ${(threads.mainMs / requests).toFixed(3)} ms/request, the ${threads.poolMs.length} busiest other threads (the evidence pool: parse, validate, check): ${threads.poolMs.map((ms) => (ms / requests).toFixed(3)).join(' + ')} ms/request, the rest (V8's GC and compiler helpers, libuv): ${(threads.restMs / requests).toFixed(3)} ms/request`,
          `load generator CPU (this process): ${(clientMs / requests).toFixed(3)} ms/request`,
          `throughput: ${(requests / wallSeconds).toFixed(0)} requests/s wall (client in the same machine; target ≥ 5,000/s on 2 cores)`,
        ].join('\n') + '\n',
      );
    } finally {
      child.send({ type: 'stop' });
      await new Promise((resolve) => child.once('exit', resolve));
      await rm(dataDir, { recursive: true, force: true });
    }
  },
};

/** `quotes` evidence bodies, each with its own nonce and quote, the same AK, IMA list and the runtime policy that accepts it. */
async function makeEvidence(entries: number, quotes: number): Promise<Record<string, unknown>[]> {
  const tpm = await createSoftwareTpm();
  const ak = await tpm.ensureAk('sha256');
  const policy = emptyRuntimePolicy();
  policy.meta.generator = 3;
  policy.excludes = ['/tmp/', '/var/log/'];
  const lines: string[] = [];
  for (let i = 0; i < entries; i++) {
    const file = i === 0 ? 'boot_aggregate' : `/usr/bin/program-${i}`;
    const digest = new Uint8Array(createHash('sha256').update(`file ${i}`).digest());
    const entry = imaNgEntry('sha256', digest, file);
    await tpm.extendPcr(IMA_PCR, 'sha256', imaExtendDigest(entry, 'sha256', 32));
    await tpm.extendPcr(IMA_PCR, 'sha1', imaExtendDigest(entry, 'sha1', 20));
    lines.push(entry.line);
    policy.digests[file] = [Buffer.from(digest).toString('hex')];
  }
  const bodies: Record<string, unknown>[] = [];
  for (let i = 0; i < quotes; i++) {
    const nonce = `evidenceBenchNonce${String(i).padStart(4, '0')}`;
    const quote = await tpm.quote({ nonce: Buffer.from(nonce, 'ascii'), pcrs: [IMA_PCR], hashAlg: 'sha256' });
    bodies.push({
      type: 'tpm',
      data: {
        quote: formatQuoteString(quote),
        nonce,
        hash_alg: 'sha256',
        tpm_ak: Buffer.from(ak.akPublic).toString('base64'),
        ima_measurement_list: `${lines.join('\n')}\n`,
        runtime_policy: JSON.stringify(policy),
      },
    });
  }
  await tpm.close();
  return bodies;
}

/** CPU time of each thread of this process (Linux: `/proc/self/task/<tid>`; the event-loop thread's id is the pid), ms by thread id. */
function threadsCpuMs(): Record<string, number> {
  const threads: Record<string, number> = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      threads[tid] = procStatCpuMs(`/proc/self/task/${tid}/stat`);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

/**
 * The CPU of the window split by thread: the event-loop thread (`mainTid`), the pool's threads (as
 * many busiest others as the pool has: one per core) and the rest (V8's platform threads, libuv's).
 */
function threadShares(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  mainTid: string,
): { mainMs: number; poolMs: number[]; restMs: number } {
  const others = Object.entries(after)
    .filter(([tid]) => tid !== mainTid)
    .map(([tid, ms]) => ms - (before[tid] ?? 0))
    .sort((a, b) => b - a);
  const poolSize = defaultEvidenceWorkers();
  return {
    mainMs: (after[mainTid] ?? 0) - (before[mainTid] ?? 0),
    poolMs: others.slice(0, poolSize),
    restMs: others.slice(poolSize).reduce((sum, ms) => sum + ms, 0),
  };
}

/** Sends `{type, value}` (except for `ready`, which the child sends first) and waits for the child's answer of that type. */
function message<T>(child: ChildProcess, type: string, value?: unknown): Promise<T> {
  if (type !== 'ready') {
    child.send({ type, value });
  }
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string; value: T }): void => {
      if (m.type === type) {
        child.off('message', onMessage);
        resolve(m.value);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`the verifier process ended (exit code ${String(code)})`)));
  });
}

async function serveChild(args: readonly string[]): Promise<void> {
  const value = (flag: string): string => args[args.indexOf(flag) + 1] ?? '';
  const verifier = await startVerifier({ dataDir: value('--data-dir'), port: 0, quoteInterval: 3600 });
  const send = (m: unknown): void => {
    process.send?.(m);
  };
  send({ type: 'ready', value: { url: verifier.url, caCert: verifier.caCert } });
  // The profile covers the measured window only, not the verifier's start-up (PGlite migrations).
  const profiler = new Session();
  profiler.connect();
  await new Promise<void>((resolve) => {
    process.on('message', (m: { type: string; value?: string }) => {
      if (m.type === 'cpu') {
        send({ type: 'cpu', value: { ...process.cpuUsage(), threadsMs: threadsCpuMs() } });
      } else if (m.type === 'profile-start') {
        void profiler.post('Profiler.enable').then(() => profiler.post('Profiler.start')).then(() => send({ type: 'profile-start' }));
      } else if (m.type === 'profile-stop') {
        void profiler.post('Profiler.stop').then(({ profile }) => writeFile(m.value as string, JSON.stringify(profile))).then(() => send({ type: 'profile-stop' }));
      } else if (m.type === 'stop') {
        resolve();
      }
    });
  });
  profiler.disconnect();
  await verifier.close();
  process.disconnect?.();
}
