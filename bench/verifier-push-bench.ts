import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { pino } from 'pino';
import { PushAgent } from '../lib/agent/push/push-agent.js';
import { createRuntimePolicy } from '../lib/ima/create-runtime-policy.js';
import { loadOrCreateClientTls } from '../lib/pki/service-tls.js';
import { ImaEmulator } from '../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm } from '../lib/tpm-access/software/tpm-adapter.js';
import { VerifierClient } from '../lib/verifier/verifier-client.js';
import { readFile } from 'node:fs/promises';

/** What the push window measured. */
export interface PushWindow {
  readonly attestations: number;
  readonly failures: number;
  /** Verifier CPU seconds per second of window (share of one core). */
  readonly verifierCpu: number;
}

export interface PushBenchInput {
  readonly agents: number;
  readonly seconds: number;
  readonly quoteInterval: number;
  readonly databaseUrl: string;
  /** Starts the verifier in a child process on `schema`; resolves to its URL and a CPU reader and a stop. */
  readonly spawn: (dataDir: string, schema: string) => Promise<{ url: string; cpuSeconds(): number; stop(): Promise<void> }>;
}

/**
 * One push window: a verifier in a child process, `agents` push agents in this process (software TPM,
 * an IMA list of a few entries, a runtime policy made from it), enrolled through the admin API, each
 * attesting on the interval the verifier returns. Counts the verdicts stored in the window and the
 * verifier's CPU over it (sessions, whose 600 000-round PBKDF2 runs once per agent, are opened before).
 */
export async function runPushWindow(input: PushBenchInput): Promise<PushWindow> {
  const schema = `bench_push_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: input.databaseUrl, pool: { min: 0, max: 1 } });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-bench-'));
  await admin.raw('create schema ??', [schema]);
  const stop = new AbortController();
  const running: Promise<void>[] = [];
  let verifier: Awaited<ReturnType<PushBenchInput['spawn']>> | undefined;
  try {
    verifier = await input.spawn(dataDir, schema);
    const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'bench-tenant' });
    const client = new VerifierClient({ baseUrl: verifier.url, tls: { ca: tls.ca, cert: tls.cert, key: tls.key } });
    const log = pino({ level: 'silent' });
    for (let i = 0; i < input.agents; i += 1) {
      const uuid = `${randomBytes(4).toString('hex')}-0000-4000-8000-${randomBytes(6).toString('hex')}`;
      const tpm = await createSoftwareTpm();
      const ak = await tpm.ensureAk('sha256');
      const imaLogPath = path.join(dataDir, `${uuid}.ima`);
      const ima = new ImaEmulator({ tpm, logPath: imaLogPath });
      await ima.start();
      await ima.measure([{ path: '/usr/bin/bash', content: new Uint8Array(Buffer.from('bash')) }]);
      const { policy } = createRuntimePolicy({ imaListText: await readFile(imaLogPath, 'utf8') });
      await client.addAgent(uuid, {
        attestation_mode: 'push',
        v: null,
        tpm_policy: JSON.stringify({ mask: '0x400' }),
        runtime_policy: Buffer.from(JSON.stringify(policy)).toString('base64'),
        mb_policy: null,
        mb_policy_name: '',
        ima_sign_verification_keys: '',
        metadata: '{}',
        revocation_key: '',
        accept_tpm_hash_algs: ['sha256'],
        accept_tpm_encryption_algs: ['rsa'],
        accept_tpm_signing_algs: ['rsassa'],
        ak_tpm: Buffer.from(ak.akPublic).toString('base64'),
        supported_version: '2.5',
      });
      const agent = new PushAgent({ uuid, verifierUrl: verifier.url, caCert: tls.ca, tpm, ak, imaLogPath, bootTime: new Date(Date.now() - 60_000), log, backoff: { initialDelayMs: 500, maxDelayMs: 2000 } });
      // Attesting from its enrolment on (a silent enrolled agent would time out while the others are set
      // up); its first session, with the slow hash, is paid before the window, once per agent.
      running.push(agent.run(stop.signal));
    }
    client.close();
    await sleep((2 * input.quoteInterval + 2) * 1000);
    const cpuBefore = verifier.cpuSeconds();
    const from = new Date();
    await sleep(input.seconds * 1000);
    const cpuAfter = verifier.cpuSeconds();
    const to = new Date();
    const rows = (await admin.withSchema(schema).table('verifier_attestation_history').select('outcome').whereBetween('attempted_at', [from, to])) as { outcome: string }[];
    return {
      attestations: rows.filter((row) => row.outcome === 'pass').length,
      failures: rows.filter((row) => row.outcome !== 'pass').length,
      verifierCpu: (cpuAfter - cpuBefore) / input.seconds,
    };
  } finally {
    stop.abort();
    await Promise.allSettled(running);
    await verifier?.stop();
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
