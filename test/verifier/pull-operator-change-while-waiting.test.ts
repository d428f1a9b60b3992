import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT = 'operator-wins-1';
/** Long enough that the agent is polled again by the loop re-reading it, not by a sweep claiming its lapsed lease. */
const LEASE_SECONDS = 30;

/**
 * An agent's runtime policy goes missing, so its reactivation is failed (`internal.verifier.exception`);
 * PostgreSQL refuses history rows (a trigger), so that FAIL waits in memory to be written again.
 * Meanwhile the operator puts the policy back and reactivates the agent. The waiting FAIL was decided
 * for the row as it was before: it must not be written over the operator's change. It is dropped, the
 * row read again at once, and the next round judges the agent as the operator left it (and passes).
 */
describe('verifier pull loop: an operator change beats a verdict waiting to be stored (real PostgreSQL)', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let direct: Database;
  let knex: Knex;
  let agent: FakePolledAgent;
  let verifier: RunningVerifier;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-operator-wins-'));
    schema = await createTestSchema();
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = direct.knex;
    agent = await startFakePolledAgent();
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2, leaseSeconds: LEASE_SECONDS },
      { inProcessForTests: true },
    );
    await enrolFakeAgent(verifier, AGENT, agent);
  });

  after(async function () {
    await verifier?.close().catch(() => undefined);
    agent?.server.close();
    await direct?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function row(): Promise<{ operational_state: number; attestation_count: number; runtime_policy_name: string }> {
    return (await knex('verifier_agents').where({ agent_id: AGENT }).first('operational_state', 'attestation_count', 'runtime_policy_name')) as never;
  }

  async function put(action: 'stop' | 'reactivate'): Promise<void> {
    const reply = await verifier.service.app.inject({ method: 'PUT', url: `/v2.6/agents/${AGENT}/${action}` });
    expect(reply.statusCode, reply.body).to.equal(200);
  }

  async function health(): Promise<number> {
    return (await verifier.service.app.inject({ method: 'GET', url: '/health' })).statusCode;
  }

  it('drops the waiting FAIL and judges the agent as the operator left it', async function () {
    await eventually('an attestation', async () => (await row()).attestation_count >= 1);
    const { runtime_policy_name: policyName, attestation_count: attested } = await row();
    await knex.raw('alter table verifier_agents drop constraint verifier_agents_runtime_policy_name_foreign');
    await knex('verifier_runtime_policies').where({ name: policyName }).update({ name: `${policyName}-away` });
    await put('stop');
    await eventually('polling stopped', () => Promise.resolve(verifier.scheduler.size === 0));
    await knex.raw(`create function refuse_history() returns trigger language plpgsql as $$
      begin raise exception 'history rows refused by the test'; end $$`);
    await knex.raw('create trigger refuse_history before insert on verifier_attestation_history for each row execute function refuse_history()');
    await put('reactivate');
    await eventually('the FAIL waiting (verifier not ready)', async () => (await health()) === 503);

    await knex('verifier_runtime_policies').where({ name: `${policyName}-away` }).update({ name: policyName });
    await put('reactivate');
    await knex.raw('drop trigger refuse_history on verifier_attestation_history');
    await eventually('the waiting verdict settled', async () => (await health()) === 200);

    expect((await row()).operational_state).to.not.equal(OperationalState.FAILED);
    await eventually('attested again', async () => (await row()).attestation_count > attested, 5000);
    expect(await knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'fail' })).to.deep.equal([]);
    const verdicts = (await knex('audit_records').where({ action: 'verdict', stream: AGENT }).select('details')) as { details: string }[];
    expect(verdicts.map((v) => (JSON.parse(v.details) as { outcome: string }).outcome)).to.not.include('fail');
  });
});
