import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { bootEmulatedNode, defaultBootLogPath } from '../lib/agent/node-emulation.js';
import { BrokerAdminClient } from '../lib/broker/broker-admin-client.js';
import { createRuntimePolicy } from '../lib/ima/create-runtime-policy.js';
import { bytesEqual } from '../lib/bytes/bytes-equal.js';
import type { EvidenceProvider } from '../lib/kbs-client/evidence-provider.js';
import { KbsClient, type SealedResource } from '../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../lib/kbs-client/kbs-http.js';
import { TpmEvidenceProvider } from '../lib/kbs-client/tpm-evidence-provider.js';
import { createRefstate } from '../lib/mb/create-refstate.js';
import { parseEventLog } from '../lib/mb/parse-event-log.js';
import { createSoftwareTpm } from '../lib/tpm-access/software/tpm-adapter.js';
import type { Benchmark } from './benchmark.js';
import { threadCounters } from './broker-bench-threads.js';
import { postgresBackendCpu, postgresCpuBetween } from './broker-bench-postgres-cpu.js';

const DATABASE_URL = process.env['IRONLIME_BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Ready {
  readonly url: string;
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * `npm run bench -- broker [seconds] [workers] [warm-up seconds] [open every] [nodes]` (defaults: 5 s
 * per phase, one broker worker per core, 5 s of unmeasured load before each phase, every 10th answer
 * decrypted — `AnswerCheck`, 1 node): the KBS broker in a child process
 * (with several workers, a `startBrokerCluster` primary and its workers) on PostgreSQL, clients in
 * this process with a software-TPM node whose evidence is fully appraised (quote, IMA list against a
 * runtime policy, UEFI boot log against a refstate).
 *
 * - background: full RCAR exchanges (auth → quote → attest → resource with the cookie → JWE decrypt),
 *   8 concurrent clients;
 * - passport: resource fetches with a cached EAR token (`Authorization: Bearer`), 16 concurrent.
 *
 * With `nodes` above 1 the clients are spread over that many nodes (client i is node i mod `nodes`),
 * as a fleet's fetches are: each node appends its attestation and release records to its own audit
 * stream, where with 1 node every client queues on one stream's head row (the worst case). The nodes
 * share the bench's one software TPM and its AK, each stored under an agent id of its own.
 *
 * Reported per phase: operations, wall-clock rate, the broker's CPU time per operation (the
 * `process.cpuUsage` of every broker process summed, so the clients' quotes and decryptions are not
 * counted) and what that means per core, the load generator's CPU per operation, and that of the
 * PostgreSQL backends serving the broker (`postgresBackendCpu`). Targets (issue 14, 2-core machine):
 * ≥ 300 exchanges/s and ≥ 1,000 token fetches/s.
 */
export const brokerBenchmark: Benchmark = {
  name: 'broker',
  description: 'KBS broker: background-check exchanges and passport-token resource fetches',
  async run(args) {
    const seconds = Number(args[0] ?? '5');
    const workers = Number(args[1] ?? availableParallelism());
    // 1 s left V8 compiling in the measured window on a busy machine (docs/broker.md, seventh pass).
    const warmupSeconds = Number(args[2] ?? '5');
    const openEvery = Number(args[3] ?? '10');
    const nodeCount = Number(args[4] ?? '1');
    if (!Number.isInteger(nodeCount) || nodeCount < 1) {
      throw new Error(`nodes must be a whole number from 1, not ${args[4]}`);
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-bench-'));
    const schema = `bench_${randomBytes(6).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    const profileDir = process.env['IRONLIME_BENCH_PROFILE'];
    // The broker's connections carry a name of their own, so the bench can find their PostgreSQL backends.
    const applicationName = `ironlime-${schema}`;
    const brokerDatabaseUrl = `${DATABASE_URL}${DATABASE_URL.includes('?') ? '&' : '?'}application_name=${applicationName}`;
    const serverArgs = [path.join(dir, 'broker'), brokerDatabaseUrl, schema, String(workers), ...(profileDir === undefined ? [] : [profileDir])];
    const child = fork(path.join(import.meta.dirname, 'broker-bench-server.js'), serverArgs, { stdio: 'inherit' });
    const tpm = await createSoftwareTpm();
    try {
      const ready = await nextMessage<{ ready: Ready }>(child, 'ready');
      const broker = ready.ready;
      const agentIds = Array.from({ length: nodeCount }, () => randomUUID());
      await tpm.ensureEk();
      const ak = await tpm.ensureAk('sha256');
      const node = await bootEmulatedNode(tpm, path.join(dir, 'node'), defaultBootLogPath(), undefined);
      await node.measure([{ path: '/usr/bin/ironic-python-agent', content: new Uint8Array(Buffer.from('ipa')) }]);
      const imaText = await readFile(node.imaLogPath, 'utf8');
      const adminClient = new BrokerAdminClient({ url: broker.url, ca: broker.caCert, cert: broker.cert, key: broker.key });
      const stored = {
        akTpm: Buffer.from(ak.akPublic).toString('base64'),
        runtimePolicy: JSON.stringify(createRuntimePolicy({ imaListText: imaText }).policy),
        mbRefstate: JSON.stringify(createRefstate(parseEventLog(new Uint8Array(await readFile(node.bootLogPath))), { withoutSecureBoot: true })),
      };
      for (const agentId of agentIds) {
        await adminClient.putNode(agentId, stored);
      }
      const secret = new Uint8Array(randomBytes(32));
      await adminClient.putResource({ repository: 'node', type: 'disk-key', tag: 'bench' }, secret, { agents: agentIds });
      await adminClient.close();
      const http = new KbsHttp({ url: broker.url, ca: broker.caCert });
      const logs = { ima_measurement_list: imaText, mb_measurement_list: (await readFile(node.bootLogPath)).toString('base64') };
      const evidences = agentIds.map((agentId) => new FixedLogsEvidence(new TpmEvidenceProvider({ tpm, agentId }), logs));
      const newClient = (mode: 'background' | 'passport', index: number): KbsClient =>
        new KbsClient({ broker: http, evidence: evidences[index % evidences.length] as EvidenceProvider, mode });

      process.stdout.write(`broker: ${workers} worker process${workers === 1 ? '' : 'es'}, ${nodeCount} node${nodeCount === 1 ? '' : 's'}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
      const profiled = profileDir !== undefined;
      const settings: PhaseSettings = { seconds, warmupSeconds, profiled, postgresCpu: () => postgresBackendCpu(admin, applicationName) };
      const answers = new AnswerCheck(secret, openEvery);
      const background = await phase(child, 'background-check exchanges', settings, 8, (index) => {
        const client = newClient('background', index);
        return async () => {
          client.invalidate();
          await answers.check(await client.getSealedResource('kbs:///node/disk-key/bench'));
        };
      });
      const passport = await phase(child, 'passport-token resource fetches', settings, 16, (index) => {
        const client = newClient('passport', index);
        return async () => {
          await answers.check(await client.getSealedResource('kbs:///node/disk-key/bench'));
        };
      });
      process.stdout.write(`answers: ${answers.opened} decrypted to the stored secret, all ${answers.checked} of JWE form\n`);
      process.stdout.write(`load average after: ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
      process.stdout.write(
        `ratio: a token fetch costs the broker ${(passport.brokerCpuMsPerOp / background.brokerCpuMsPerOp).toFixed(2)} of a full exchange\n`,
      );
      await http.close();
      await node.close();
    } finally {
      child.send('stop');
      await new Promise((resolve) => child.once('exit', resolve));
      await tpm.close();
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/**
 * The load generator's check of each resource answer: every one must be a flattened JWE with its five
 * members, and every `openEvery`-th (the first included) is decrypted with the tee key and must be the
 * stored secret. The broker does the same work for every answer; opening all of them (`openEvery` 1)
 * costs the generator, which shares the two cores, about as much CPU as the broker's whole fetch.
 */
class AnswerCheck {
  checked = 0;
  opened = 0;

  constructor(
    private readonly secret: Uint8Array,
    private readonly openEvery: number,
  ) {}

  async check(answer: SealedResource): Promise<void> {
    const jwe = answer.jwe as unknown as Record<string, unknown>;
    if (!JWE_MEMBERS.every((member) => typeof jwe[member] === 'string' && (jwe[member] as string).length > 0)) {
      throw new Error('the broker answered something other than a flattened JWE');
    }
    if (this.checked++ % this.openEvery === 0) {
      if (!bytesEqual(await answer.open(), this.secret)) {
        throw new Error('the resource JWE opened to something other than the stored secret');
      }
      this.opened += 1;
    }
  }
}

const JWE_MEMBERS = ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const;

/**
 * The bench node's evidence: a fresh quote over each session's report data (the wrapped provider, given
 * no log paths), with the IMA list and boot log read once — they do not change during the benchmark, and
 * reading and encoding them at every exchange was generator CPU taken from the broker.
 */
class FixedLogsEvidence implements EvidenceProvider {
  readonly tee: string;

  constructor(
    private readonly quotes: EvidenceProvider,
    private readonly logs: { readonly ima_measurement_list: string; readonly mb_measurement_list: string },
  ) {
    this.tee = quotes.tee;
  }

  async primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>> {
    return { ...(await this.quotes.primaryEvidence(reportData)), ...this.logs };
  }
}

interface PhaseResult {
  readonly brokerCpuMsPerOp: number;
}

interface PhaseSettings {
  readonly seconds: number;
  /** Unmeasured load before the window: every broker worker compiles (JIT) and fills its caches. */
  readonly warmupSeconds: number;
  readonly profiled: boolean;
  /** CPU ms by pid of the PostgreSQL backends serving the broker. */
  readonly postgresCpu: () => Promise<Map<number, number>>;
}

async function phase(
  child: ChildProcess,
  label: string,
  { seconds, warmupSeconds, profiled, postgresCpu }: PhaseSettings,
  concurrency: number,
  makeWorker: (index: number) => () => Promise<void>,
): Promise<PhaseResult> {
  const workers = Array.from({ length: concurrency }, (_, index) => makeWorker(index));
  const warmupEnd = Date.now() + warmupSeconds * 1000;
  await Promise.all(
    workers.map(async (work) => {
      do {
        await work();
      } while (Date.now() < warmupEnd);
    }),
  );
  if (profiled) {
    const started = nextMessage(child, 'profiling');
    child.send({ profile: label.split(' ')[0] });
    await started;
  }
  const postgresBefore = await postgresCpu();
  const brokerBefore = await childCpu(child);
  const threadsBefore = threadCounters(child.pid ?? 0);
  const clientBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  let operations = 0;
  await Promise.all(
    workers.map(async (work) => {
      while (Date.now() < deadline) {
        await work();
        operations += 1;
      }
    }),
  );
  const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  const brokerAfter = await childCpu(child);
  const threadsAfter = threadCounters(child.pid ?? 0);
  const postgresMs = postgresCpuBetween(postgresBefore, await postgresCpu());
  const clientCpu = process.cpuUsage(clientBefore);
  if (profiled) {
    const written = nextMessage<{ profiled: string }>(child, 'profiled');
    child.send('profile-stop');
    process.stdout.write(`profile: ${(await written).profiled}\n`);
  }
  const brokerMs = (brokerAfter.user + brokerAfter.system - brokerBefore.user - brokerBefore.system) / 1000;
  const clientMs = (clientCpu.user + clientCpu.system) / 1000;
  const perOp = brokerMs / operations;
  process.stdout.write(
    `${label}: ${operations} in ${wallSeconds.toFixed(1)} s = ${(operations / wallSeconds).toFixed(0)}/s wall (clients in this process); ` +
      `broker CPU ${perOp.toFixed(3)} ms/op = ${(1000 / perOp).toFixed(0)}/s per broker core; client CPU ${(clientMs / operations).toFixed(3)} ms/op; ` +
        `PostgreSQL CPU ${(postgresMs / operations).toFixed(3)} ms/op (the broker's backends, 10 ms ticks); ` +
        `broker main thread ${((threadsAfter.mainThreadMs - threadsBefore.mainThreadMs) / operations).toFixed(3)} + other threads ` +
        `${((threadsAfter.allThreadsMs - threadsAfter.mainThreadMs - threadsBefore.allThreadsMs + threadsBefore.mainThreadMs) / operations).toFixed(3)} ms/op ` +
        `(10 ms ticks; other: libuv's pool, V8's compiler and GC); ` +
        `broker context switches ${((threadsAfter.voluntary - threadsBefore.voluntary) / operations).toFixed(1)} voluntary + ` +
        `${((threadsAfter.involuntary - threadsBefore.involuntary) / operations).toFixed(1)} involuntary per op\n`,
  );
  return { brokerCpuMsPerOp: perOp };
}

async function childCpu(child: ChildProcess): Promise<NodeJS.CpuUsage> {
  const reply = nextMessage<{ cpu: NodeJS.CpuUsage }>(child, 'cpu');
  child.send('cpu');
  return (await reply).cpu;
}

function nextMessage<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      if (message !== null && typeof message === 'object' && key in message) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message as T);
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`broker child exited (${code})`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
