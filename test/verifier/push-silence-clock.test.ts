import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

/** Seconds of silence that fail a push agent (`pushTimeout`). */
const TIMEOUT = 10;

/**
 * A push agent's silence is measured on the database's clock, which dated its last attestation (stored
 * by whichever process took its evidence): a sweeping process whose own clock is behind still fails an
 * agent silent past the timeout, and one whose clock is ahead does not fail an agent that just attested.
 */
describe("push silence sweep: measured on the database's clock, whatever the sweeping process's clock", function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let database: Database;
  let knex: Knex;
  const fake = new FakeAgent();
  let verifier: RunningVerifier | undefined;

  /** A verifier process whose clock is `skewSeconds` off this host's (and the database's). */
  async function start(instanceId: string, skewSeconds: number): Promise<RunningVerifier> {
    verifier = await startVerifier(
      { dataDir: path.join(dir, instanceId), databaseUrl: schema.url, instanceId, quoteInterval: 1, pushTimeout: TIMEOUT },
      { inProcessForTests: true, processClockForTests: () => Date.now() + skewSeconds * 1000 },
    );
    return verifier;
  }

  /** Enrols push agent `id` through `at`, then dates its last attestation `secondsAgo` on the database's clock (as any process now stores it). */
  async function attestedAgo(at: RunningVerifier, id: string, secondsAgo: number): Promise<void> {
    const reply = await at.service.app.inject({
      method: 'POST',
      url: `/v2.5/agents/${id}`,
      payload: {
        attestation_mode: 'push',
        tpm_policy: '{"mask": "0x8000"}',
        runtime_policy: '',
        accept_tpm_hash_algs: ['sha256'],
        accept_tpm_encryption_algs: ['rsa'],
        accept_tpm_signing_algs: ['rsassa'],
        ak_tpm: fake.akTpm,
      },
    });
    expect(reply.statusCode, reply.body).to.equal(200);
    await knex('verifier_agents')
      .where({ agent_id: id })
      .update({
        operational_state: OperationalState.GET_QUOTE,
        attestation_count: 1,
        created_at: knex.raw("now() - interval '1 hour'"),
        last_received_quote: knex.raw('now() - make_interval(secs => ?)', [secondsAgo]),
        last_successful_attestation: knex.raw('now() - make_interval(secs => ?)', [secondsAgo]),
      });
  }

  async function stateOf(id: string): Promise<number> {
    return ((await knex('verifier_agents').where({ agent_id: id }).first('operational_state')) as { operational_state: number }).operational_state;
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-clock-'));
    schema = await createTestSchema();
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    knex = database.knex;
  });

  afterEach(async function () {
    await verifier?.close();
    verifier = undefined;
    await knex('verifier_agents').delete();
  });

  after(async function () {
    await database?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a process whose clock is 120 s behind fails a push agent silent for twice the timeout', async function () {
    const sweeper = await start('behind', -120);
    await attestedAgo(sweeper, 'silent-push', 2 * TIMEOUT);
    await sweeper.push.silenceSweep.tick();
    await eventually('failed for its silence', async () => (await stateOf('silent-push')) === OperationalState.FAILED, 20_000, 200);
  });

  it('a process whose clock is 120 s ahead does not fail a push agent that attested a second ago', async function () {
    const sweeper = await start('ahead', 120);
    await attestedAgo(sweeper, 'live-push', 1);
    await sweeper.push.silenceSweep.tick();
    await sweeper.push.silenceSweep.tick();
    expect(await stateOf('live-push')).to.equal(OperationalState.GET_QUOTE);
  });
});
