import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../../helpers/databases.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './fake-polled-agent.js';
import { startRevocationWebhook, type RevocationWebhook } from './revocation-webhook.js';
import { createTestSchema } from './verifier-fixture.js';

/** The agent's row as the pull-loop durability tests watch it. */
export interface WatchedAgentRow {
  readonly operational_state: number;
  readonly attestation_count: number;
  readonly runtime_policy_name: string;
  readonly lease_lapsed: boolean;
}

/**
 * One in-process verifier on a fresh PostgreSQL schema (0.3 s interval, 2 retries) polling one fake
 * agent, with a direct connection to the same schema for the test's own statements (triggers, policy
 * rows) and a revocation webhook that keeps what is announced: the set-up of the tests that make the
 * pull loop's verdict writes fail or wait.
 */
export interface SingleAgentVerifier {
  readonly schemaName: string;
  readonly knex: Knex;
  readonly verifier: RunningVerifier;
  /** The revocation messages the verifier announced (its one webhook), parsed. */
  readonly announced: readonly Record<string, unknown>[];
  /** The polled agent's HTTPS server. */
  readonly agentServer: FakePolledAgent['server'];
  /** The polled agent's TPM and IMA log (measure a file the policy does not allow and its next round fails). */
  readonly fakeAgent: FakePolledAgent['fake'];
  row(): Promise<WatchedAgentRow>;
  /** `PUT /v2.6/agents/{id}/{action}`, expected to succeed. */
  put(action: 'stop' | 'reactivate'): Promise<void>;
  /** The verifier's `/health` status code. */
  health(): Promise<number>;
  close(): Promise<void>;
}

/** `databasePort`: the verifier reaches PostgreSQL on that port (a test's proxy); the test's own connection stays direct. */
export async function startSingleAgentVerifier(agentId: string, leaseSeconds: number, databasePort?: number): Promise<SingleAgentVerifier> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-single-agent-'));
  const schema = await createTestSchema();
  let direct: Database | undefined;
  let agent: FakePolledAgent | undefined;
  let verifier: RunningVerifier | undefined;
  let webhook: RevocationWebhook | undefined;
  const close = async (): Promise<void> => {
    await verifier?.close().catch(() => undefined);
    agent?.server.close();
    await webhook?.close();
    await direct?.close();
    await schema.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    agent = await startFakePolledAgent();
    webhook = await startRevocationWebhook();
    verifier = await startVerifier(
      {
        dataDir: dir,
        databaseUrl: viaPort(schema.url, databasePort),
        quoteInterval: 0.3,
        retryInterval: 0.2,
        maxRetries: 2,
        leaseSeconds,
        revocationWebhooks: [webhook.url],
      },
      { inProcessForTests: true },
    );
    await enrolFakeAgent(verifier, agentId, agent);
  } catch (error) {
    await close();
    throw error;
  }
  const { knex } = direct;
  const running = verifier;
  const { announced } = webhook;
  return {
    schemaName: schema.name,
    knex,
    verifier: running,
    announced,
    agentServer: agent.server,
    fakeAgent: agent.fake,
    row: async () =>
      (
        await knex.raw('select operational_state, attestation_count, runtime_policy_name, lease_expires_at < now() as lease_lapsed from verifier_agents where agent_id = ?', [agentId])
      ).rows[0] as WatchedAgentRow,
    put: async (action) => {
      const reply = await running.service.app.inject({ method: 'PUT', url: `/v2.6/agents/${agentId}/${action}` });
      expect(reply.statusCode, reply.body).to.equal(200);
    },
    health: async () => (await running.service.app.inject({ method: 'GET', url: '/health' })).statusCode,
    close,
  };
}

function viaPort(url: string, port: number | undefined): string {
  if (port === undefined) return url;
  const routed = new URL(url);
  routed.port = String(port);
  return routed.toString();
}
