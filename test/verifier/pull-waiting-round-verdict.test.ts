import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

/**
 * A polled agent's round verdict cannot be stored (a trigger refuses history rows) and waits in memory;
 * the agent runs no round meanwhile, so the last nonce it was asked is the waiting verdict's. Once the
 * rows are accepted, that verdict is stored — unless an operator reactivated the agent while it
 * waited: then it was decided for the row before the operator's change, is dropped, and the next
 * round (a new nonce) judges the agent as the operator left it.
 */
describe('verifier pull loop: a round verdict waiting to be stored, with and without an operator change (real PostgreSQL)', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let direct: Database;
  let knex: Knex;
  let verifier: RunningVerifier;
  const agents: FakePolledAgent[] = [];

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-waiting-round-'));
    schema = await createTestSchema();
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = direct.knex;
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2, leaseSeconds: 30 },
      { inProcessForTests: true },
    );
    await knex.raw(`create function refuse_history() returns trigger language plpgsql as $$
      begin raise exception 'history rows refused by the test'; end $$`);
  });

  after(async function () {
    await verifier?.close().catch(() => undefined);
    for (const agent of agents) agent.server.close();
    await direct?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function health(): Promise<number> {
    return (await verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode;
  }

  /** The rounds whose verdict waits to be stored (one per agent), as /metrics reports them. */
  async function unstoredRounds(): Promise<number> {
    const metrics = (await verifier.service.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^ironlime_verifier_unstored_rounds (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
  }

  async function attestations(agentId: string): Promise<number> {
    return ((await knex('verifier_agents').where({ agent_id: agentId }).first('attestation_count')) as { attestation_count: number }).attestation_count;
  }

  /** Enrols an agent, lets it attest, then holds its next verdict back; resolves to that verdict's nonce. */
  async function holdVerdictBack(agentId: string): Promise<string> {
    const agent = await startFakePolledAgent();
    agents.push(agent);
    const nonces: string[] = [];
    agent.server.prependListener('request', (req: { url?: string }) => nonces.push(new URL(req.url ?? '/', 'https://agent').searchParams.get('nonce') ?? ''));
    await enrolFakeAgent(verifier, agentId, agent);
    await eventually('an attestation', async () => (await attestations(agentId)) >= 1);
    await knex.raw('create trigger refuse_history before insert on verifier_attestation_history for each row execute function refuse_history()');
    await eventually('a verdict waiting (verifier not ready)', async () => (await health()) === 503);
    // Every enrolled agent's verdict waits, this one's too: waited for, as a fixed second may not hold
    // this agent's next round on a slow host (the verdict of another agent enrolled earlier waits first).
    await eventually('every agent\'s verdict waiting', async () => (await unstoredRounds()) === agents.length, 15_000);
    const asked = nonces.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(nonces, 'no round while the verdict waits').to.have.length(asked);
    return nonces[asked - 1] ?? '';
  }

  async function historyNonces(agentId: string): Promise<string[]> {
    return ((await knex('verifier_attestation_history').where({ agent_id: agentId }).select('nonce')) as { nonce: string }[]).map((row) => row.nonce);
  }

  it('stores the waiting verdict itself once the rows are accepted', async function () {
    const waiting = await holdVerdictBack('waiting-round-1');
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    await eventually('the verdict stored', async () => (await health()) === 200);
    expect(await historyNonces('waiting-round-1')).to.include(waiting);
  });

  it('drops the waiting verdict when the operator reactivated the agent meanwhile; the next round judges it', async function () {
    const waiting = await holdVerdictBack('waiting-round-2');
    const before = await attestations('waiting-round-2');
    const reply = await verifier.service.app.inject({ method: 'PUT', url: '/v2.6/agents/waiting-round-2/reactivate' });
    expect(reply.statusCode, reply.body).to.equal(200);
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    await eventually('attested again', async () => (await attestations('waiting-round-2')) > before);
    expect(await historyNonces('waiting-round-2')).to.not.include(waiting);
  });
});
