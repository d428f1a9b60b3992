import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAgent, type RunningAgent } from '../../../lib/agent/agent-server.js';
import type { AgentConfigInput } from '../../../lib/agent/agent-config.js';
import type { PushAgentInput } from '../../../lib/agent/push/push-agent-server.js';
import knexFactory from 'knex';
import { createDatabase, type Database } from '../../../lib/db/database-factory.js';
import { createRuntimePolicy } from '../../../lib/ima/create-runtime-policy.js';
import { createRefstate } from '../../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../../lib/mb/parse-event-log.js';
import { loadOrCreateClientTls, type ServiceTls } from '../../../lib/pki/service-tls.js';
import { startRegistrar, type RunningRegistrar } from '../../../lib/registrar/registrar-server.js';
import { TenantClient, type TenantClientOptions } from '../../../lib/tenant/tenant-client.js';
import { startVerifier, type RunningVerifier, type StartVerifierOptions } from '../../../lib/verifier/verifier-server.js';
import type { VerifierConfigInput } from '../../../lib/verifier/verifier-config.js';
import { TEST_DATABASE_URL } from '../../helpers/databases.js';
import { createMigratedSchema } from '../../helpers/migrated-schema-copy.js';

/**
 * A whole Keylime deployment in one folder: `services/` is the data dir of registrar and verifier
 * (one CA: the registrar's and verifier's TLS certificates, the tenant's and the verifier's client
 * certificates; agents trust it for client certificates), each service with its own database.
 */
export interface Deployment {
  readonly root: string;
  readonly servicesDir: string;
  readonly caFile: string;
  readonly registrar: RunningRegistrar;
  readonly tenantTls: ServiceTls;
  verifier: RunningVerifier | undefined;
  readonly agents: RunningAgent[];
  startVerifier(overrides?: Partial<VerifierConfigInput>, options?: StartVerifierOptions): Promise<RunningVerifier>;
  startAgent(name: string, overrides?: Partial<AgentConfigInput>): Promise<RunningAgent>;
  /**
   * What `startPushAgent` takes for an emulated push node `name` of this deployment (software TPM, this
   * registrar, `verifierUrl` with this deployment's CA, a short back-off). The caller starts and closes it.
   */
  pushAgentInput(name: string, verifierUrl: string, overrides?: Partial<PushAgentInput>): PushAgentInput;
  tenant(verifierUrl?: string, overrides?: Partial<TenantClientOptions>): TenantClient;
  dispose(): Promise<void>;
}

/**
 * Starts the deployment. Registrar and in-process verifiers share one database: a fresh schema on the
 * test PostgreSQL (fast to open; PGlite is covered by the repository tests and the e2e suite).
 */
export async function createDeployment(): Promise<Deployment> {
  const root = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-'));
  const servicesDir = path.join(root, 'services');
  const schema = await createTestSchema({ migrated: true });
  const registrarDb: Database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: root, searchPath: schema.name });
  const registrar = await startRegistrar({ dataDir: servicesDir, port: 0, tlsPort: 0, ekCheck: 'off' }, { database: registrarDb });
  const tenantTls = await loadOrCreateClientTls({ dataDir: servicesDir, serviceName: 'tenant' });
  const caFile = path.join(servicesDir, 'ca', 'cacert.crt');
  const tenants: TenantClient[] = [];
  const deployment: Deployment = {
    root,
    servicesDir,
    caFile,
    registrar,
    tenantTls,
    verifier: undefined,
    agents: [],
    async startVerifier(overrides = {}, options = {}) {
      const verifier = await startVerifier(
        { dataDir: servicesDir, port: 0, quoteInterval: 0.3, retryInterval: 0.1, maxRetries: 2, leaseSeconds: 5, ...overrides },
        { database: registrarDb, ...options },
      );
      deployment.verifier = verifier;
      return verifier;
    },
    async startAgent(name, overrides = {}) {
      const agent = await startAgent({
        dataDir: path.join(root, name),
        registrarUrl: registrar.httpUrl,
        tpm: 'software',
        emulate: true,
        port: 0,
        clientCaFile: caFile,
        ...overrides,
      });
      deployment.agents.push(agent);
      return agent;
    },
    pushAgentInput(name, verifierUrl, overrides = {}) {
      return {
        dataDir: path.join(root, name),
        registrarUrl: registrar.httpUrl,
        emulate: true,
        tpm: 'software',
        verifierUrl,
        verifierCaFile: caFile,
        backoff: { initialDelayMs: 200, maxDelayMs: 1000 },
        ...overrides,
      };
    },
    tenant(verifierUrl, overrides = {}) {
      const tenant = new TenantClient({
        registrarUrl: registrar.tlsUrl,
        verifierUrl: verifierUrl ?? deployment.verifier?.url ?? 'https://127.0.0.1:1',
        tls: tenantTls,
        ekCheck: 'off',
        ...overrides,
      });
      tenants.push(tenant);
      return tenant;
    },
    async dispose() {
      for (const tenant of tenants) {
        tenant.close();
      }
      await deployment.verifier?.close().catch(() => undefined);
      await Promise.all(deployment.agents.map((agent) => agent.close().catch(() => undefined)));
      await registrar.close();
      await registrarDb.close();
      await schema.drop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return deployment;
}

/** A runtime policy allowing exactly what the agent's IMA log holds now, plus `extra` path → sha256 hex. */
export function policyForAgent(agent: RunningAgent, extra: Record<string, string> = {}): string {
  return policyForImaLog(agent.imaLogPath as string, extra);
}

/** A runtime policy allowing exactly what the IMA log at `imaLogPath` holds now, plus `extra` path → sha256 hex. */
export function policyForImaLog(imaLogPath: string, extra: Record<string, string> = {}): string {
  const { policy } = createRuntimePolicy({ imaListText: readFileSync(imaLogPath, 'utf8') });
  for (const [file, digest] of Object.entries(extra)) {
    (policy.digests[file] ??= []).push(digest);
  }
  return JSON.stringify(policy);
}

/** The refstate of the agent's (emulated) boot log. */
export function refstateForAgent(agent: RunningAgent): string {
  return JSON.stringify(createRefstate(parseEventLog(new Uint8Array(readFileSync(agent.bootLogPath as string))), { withoutSecureBoot: true }));
}

/** SHA-256 hex of a string: a "file digest" for emulated IMA entries. */
export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Resolves when `check` returns true, polling every `intervalMs`; throws with `what` after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * A fresh schema on the test PostgreSQL (`test_<hex>`), dropped with everything in it by `drop()`;
 * `migrated`: with every migration applied (`createMigratedSchema`), else empty.
 */
export async function createTestSchema({ migrated = false } = {}): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `test_${randomBytes(8).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  if (migrated) await createMigratedSchema(TEST_DATABASE_URL, name);
  else await admin.raw('create schema ??', [name]);
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    async drop() {
      await admin.raw('drop schema if exists ?? cascade', [name]);
      await admin.destroy();
    },
  };
}
