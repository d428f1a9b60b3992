import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bootEmulatedNode, defaultBootLogPath, type EmulatedNode } from '../../../lib/agent/node-emulation.js';
import { BrokerAdminClient } from '../../../lib/broker/broker-admin-client.js';
import { startBroker, type BrokerConfigInput, type RunningBroker } from '../../../lib/broker/broker-server.js';
import { createRuntimePolicy } from '../../../lib/ima/create-runtime-policy.js';
import { createRefstate } from '../../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../../lib/mb/parse-event-log.js';
import { loadOrCreateClientTls } from '../../../lib/pki/service-tls.js';
import { createSoftwareTpm } from '../../../lib/tpm-access/software/tpm-adapter.js';
import type { Tpm } from '../../../lib/tpm-access/tpm-port.js';
import type { Database } from '../../../lib/db/database-factory.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../../helpers/databases.js';
import { KbsRefusedError } from '../../../lib/kbs-client/kbs-client-errors.js';
import type { KbsHttp } from '../../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../../lib/kbs-client/tpm-evidence-provider.js';
import { REPORT_DATA_HASH, reportDataOf, TEE_TPM, type RuntimeData } from '../../../lib/broker/kbs-wire.js';

/** A broker on a temp data folder, with an mTLS admin client. */
export interface TestBroker {
  readonly running: RunningBroker;
  readonly admin: BrokerAdminClient;
  readonly dataDir: string;
  dispose(): Promise<void>;
}

/**
 * Starts a broker on `database` (a `forEachDatabase` fixture's, left open by `dispose`), or on a fresh
 * PostgreSQL schema of its own (dropped by `dispose`).
 */
export async function startTestBroker(config: Partial<BrokerConfigInput> = {}, database?: Database): Promise<TestBroker> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-test-'));
  const opened: OpenedDatabase | undefined = database === undefined ? await openMigratedTestSchema() : undefined;
  const running = await startBroker({ port: 0, ...config, dataDir }, { database: database ?? opened!.database });
  const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'broker-admin' });
  const admin = new BrokerAdminClient({ url: running.url, ca: running.caCert, cert: tls.cert, key: tls.key });
  return {
    running,
    admin,
    dataDir,
    async dispose() {
      await admin.close();
      await running.close();
      await opened?.dispose();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** An emulated node: a TPM with the shipped UEFI log replayed and an IMA log, plus its good policies. */
export interface TestNode {
  readonly agentId: string;
  readonly tpm: Tpm;
  readonly akTpm: string;
  readonly emulated: EmulatedNode;
  readonly dir: string;
  /** Runtime policy JSON of the node's IMA log at boot (plus `extra` files). */
  runtimePolicy(extra?: Record<string, string>): Promise<string>;
  /** The refstate of the node's boot log. */
  refstate(): Promise<string>;
  dispose(): Promise<void>;
}

/** Boots `tpm` as an emulated node (the TPM must be fresh: PCRs at their reset values). */
export async function bootTestNode(tpm: Tpm, options: { tcti?: string; agentId?: string; closeTpm?: boolean } = {}): Promise<TestNode> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-node-'));
  await tpm.ensureEk();
  const ak = await tpm.ensureAk('sha256');
  const emulated = await bootEmulatedNode(tpm, dir, defaultBootLogPath(), options.tcti);
  return {
    agentId: options.agentId ?? randomUUID(),
    tpm,
    akTpm: Buffer.from(ak.akPublic).toString('base64'),
    emulated,
    dir,
    async runtimePolicy(extra = {}) {
      const { policy } = createRuntimePolicy({ imaListText: await readFile(emulated.imaLogPath, 'utf8') });
      for (const [file, digest] of Object.entries(extra)) {
        (policy.digests[file] ??= []).push(digest);
      }
      return JSON.stringify(policy);
    },
    async refstate() {
      const log = parseEventLog(new Uint8Array(await readFile(emulated.bootLogPath)));
      return JSON.stringify(createRefstate(log, { withoutSecureBoot: true }));
    },
    async dispose() {
      await emulated.close();
      if (options.closeTpm !== false) {
        await tpm.close();
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A node on the in-process software TPM (fast; the swtpm suite covers real TPMs). */
export async function softwareTestNode(agentId?: string): Promise<TestNode> {
  return bootTestNode(await createSoftwareTpm(), agentId === undefined ? {} : { agentId });
}

/** The broker's refusal `promise` ends with; any other outcome fails the test. */
export async function refusal(promise: Promise<unknown>): Promise<KbsRefusedError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KbsRefusedError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected a KBS refusal');
}

/** The report data the broker binds an Attestation's evidence to (its SHA-256, tee `tpm`); `additionalEvidence` as sent, `""` when absent. */
export function brokerReportData(runtimeData: RuntimeData, additionalEvidence = ''): Uint8Array {
  return reportDataOf({ runtimeData, additionalEvidence, hash: REPORT_DATA_HASH, tee: TEE_TPM });
}

/** An RCAR session that attested with `node`'s TPM: its cookie, its tee key (EC P-256) and the token `/attest` returned. */
export interface AttestedSession {
  readonly cookie: string;
  readonly key: TeeKeyPair;
  readonly token: string;
}

/** `/auth` then `/attest` over `http` with the node's real evidence, as a KBS client does. */
export async function attestedSession(http: KbsHttp, node: TestNode): Promise<AttestedSession> {
  const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
  const cookie = String(auth.headers['set-cookie']).split(';')[0] as string;
  const key = await TeeKeyPair.generate('ec');
  const runtimeData = { nonce: (auth.body as { nonce: string }).nonce, 'tee-pubkey': key.publicJwk };
  const evidence = await new TpmEvidenceProvider({
    tpm: node.tpm,
    agentId: node.agentId,
    imaLogPath: node.emulated.imaLogPath,
    bootLogPath: node.emulated.bootLogPath,
  }).primaryEvidence(brokerReportData(runtimeData));
  const attested = await http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } }, headers: { cookie } });
  return { cookie, key, token: (attested.body as { token: string }).token };
}
