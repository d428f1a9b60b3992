import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { issueApiToken } from '../../lib/auth/api-token.js';
import type { Role } from '../../lib/auth/roles.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { startFleet, type RunningFleet } from '../../lib/fleet/fleet.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { timedHttpsCall } from '../helpers/timed-https-call.js';

/** A running fleet in its own schema and data dir, with helpers to call its verifier with a token. */
export interface TestFleet {
  readonly fleet: RunningFleet;
  readonly dataDir: string;
  readonly schema: string;
  readonly admin: Knex;
  readonly caCert: string;
  token(role: Role, tenant: string, ttlSeconds?: number): Promise<string>;
  /** An HTTPS request to the verifier without a client certificate; `json` is sent as the body. */
  call(method: string, urlPath: string, headers?: Record<string, string>, json?: unknown): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

export async function startTestFleet(agents: number, quoteInterval: number): Promise<TestFleet> {
  const schema = `test_dash_${randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  await admin.raw('create schema ??', [schema]);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-dashboard-test-'));
  let fleet: RunningFleet | undefined;
  try {
    fleet = await startFleet({ agents, dataDir, databaseUrl: TEST_DATABASE_URL, databaseSchema: schema, quoteInterval, imaEntriesPerMinute: 0 });
    for (const agent of fleet.agents) {
      await fleet.tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 30_000, intervalMs: 100 });
    }
  } catch (error) {
    await fleet?.close().catch(() => undefined);
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const running = fleet;
  const caCert = running.services?.verifier?.caCert as string;
  const key = loadOrCreateTokenKey(dataDir);
  return {
    fleet: running,
    dataDir,
    schema,
    admin,
    caCert,
    token: (role, tenant, ttlSeconds = 600) => issueApiToken({ subject: `${role}-of-${tenant}`, role, tenant, ttlSeconds }, key.privateKey),
    call: (method, urlPath, headers = {}, json = undefined) =>
      timedHttpsCall(
        running.verifierUrl,
        caCert,
        method,
        urlPath,
        { ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        json === undefined ? undefined : JSON.stringify(json),
      ),
    async close() {
      await running.close();
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
