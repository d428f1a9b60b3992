import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT = 'dripping-agent-1';
const REQUEST_TIMEOUT_MS = 500;

interface HistoryRow {
  /** A bigint column: node-postgres hands it over as text. */
  readonly id: string;
  readonly outcome: string;
  readonly attempted_at: Date;
  readonly failures: readonly { readonly event_id: string; readonly context: unknown }[];
}

/**
 * An attested agent starts answering its quote requests a byte every 100 ms and never finishes: never
 * silent, never done. Each pull round must end at the request deadline as "agent unreachable" and go
 * through the engine's retries to FAILED (`internal.verifier.not_reachable`), not hold the round open
 * (no verdict, no next round) and never PASS.
 */
describe('verifier pull loop: an agent that drips its quote reply (real PostgreSQL)', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let direct: Database;
  let agent: FakePolledAgent;
  let verifier: RunningVerifier;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-dripping-agent-'));
    schema = await createTestSchema();
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    agent = await startFakePolledAgent();
    verifier = await startVerifier(
      {
        dataDir: dir,
        databaseUrl: schema.url,
        quoteInterval: 0.3,
        retryInterval: 0.2,
        maxRetries: 2,
        leaseSeconds: 3,
        requestTimeout: REQUEST_TIMEOUT_MS / 1000,
      },
      { inProcessForTests: true },
    );
    await enrolFakeAgent(verifier, AGENT, agent);
  });

  after(async function () {
    await verifier?.close().catch(() => undefined);
    agent?.server.closeAllConnections();
    agent?.server.close();
    await direct?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const history = async (afterId: string): Promise<HistoryRow[]> =>
    (await direct.knex('verifier_attestation_history').where({ agent_id: AGENT }).andWhere('id', '>', afterId).orderBy('id')) as HistoryRow[];

  it('ends each round at the deadline as unreachable, retries, then fails the agent', async function () {
    await eventually('a passing round', async () => (await history('0')).some((row) => row.outcome === 'pass'));
    const attested = await history('0');
    const lastBefore = attested[attested.length - 1]?.id ?? '0';
    agent.dripEveryMs = 100;

    // Three rounds of at most the deadline each, with short back-offs between them; without the
    // deadline the first round never ends.
    await eventually('the agent failed', async () => (await history(lastBefore)).some((row) => row.outcome === 'fail'), 8_000);
    const rounds = await history(lastBefore);
    // A round that had already fetched its quote when the drip began may still pass; none after it.
    const judged = rounds.slice(rounds.findIndex((row) => row.outcome !== 'pass'));
    expect(judged.map((row) => row.outcome)).to.deep.equal(['retry', 'retry', 'fail']);
    // Each round ran until the deadline (the back-off between rounds is shorter than it).
    for (let n = 1; n < judged.length; n += 1) {
      const [previous, current] = [judged[n - 1]?.attempted_at.getTime() ?? 0, judged[n]?.attempted_at.getTime() ?? 0];
      expect(current - previous).to.be.at.least(REQUEST_TIMEOUT_MS);
    }
    const [failure, ...more] = judged[judged.length - 1]?.failures ?? [];
    expect(more).to.deep.equal([]);
    expect(failure?.event_id).to.equal('internal.verifier.not_reachable');
    expect(JSON.stringify(failure?.context)).to.include(`unreachable: no complete reply within ${REQUEST_TIMEOUT_MS} ms`);
    const state = (await direct.knex('verifier_agents').where({ agent_id: AGENT }).first('operational_state')) as { operational_state: number };
    expect(state.operational_state).to.equal(OperationalState.FAILED);
  });
});
