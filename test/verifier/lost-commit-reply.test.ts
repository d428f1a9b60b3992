import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT = 'lost-commit-1';

/**
 * The connection to PostgreSQL is cut after the server committed a batch of rounds but before the
 * verifier saw the reply to its COMMIT (a proxy swallows that reply). The verifier cannot know whether
 * the round is stored and writes it again; the round must then be stored once: one history row per
 * nonce, one audit verdict per nonce, and the agent's `pass` rows equal to its `attestation_count`.
 */
describe('verifier: a round whose COMMIT reply is lost is stored once (real PostgreSQL)', function () {
  this.timeout(60_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let direct: Database;
  let proxy: CommitReplyDropper;
  let agent: FakePolledAgent;
  let verifier: RunningVerifier;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-lost-commit-'));
    schema = await createTestSchema();
    direct = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    const target = new URL(TEST_DATABASE_URL);
    proxy = new CommitReplyDropper(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const proxied = new URL(schema.url);
    proxied.port = String(proxy.port);
    agent = await startFakePolledAgent();
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: proxied.toString(), quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2, leaseSeconds: 3 },
      { inProcessForTests: true },
    );
    await enrolFakeAgent(verifier, AGENT, agent);
  });

  after(async function () {
    await verifier?.close().catch(() => undefined);
    await proxy?.close();
    agent?.server.close();
    await direct?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the round again only when it is not stored, so no verdict is duplicated', async function () {
    const knex = direct.knex;
    const count = async (): Promise<number> =>
      Number(((await knex('verifier_agents').where({ agent_id: AGENT }).first('attestation_count')) as { attestation_count: number } | undefined)?.attestation_count ?? 0);
    await eventually('two attestations', async () => (await count()) >= 2);

    proxy.dropNextCommitReplyAfter('jsonb_to_recordset');
    await eventually('a COMMIT reply swallowed', () => Promise.resolve(proxy.dropped === 1));
    const after = await count();
    await eventually('two more attestations', async () => (await count()) >= after + 2);

    const duplicated = (await knex('verifier_attestation_history').select('nonce').count('* as n').groupBy('nonce').havingRaw('count(*) > 1')) as unknown[];
    expect(duplicated).to.deep.equal([]);
    const verdicts = (await knex('audit_records').where({ action: 'verdict' }).select('details')) as { details: string }[];
    const nonces = verdicts.map((v) => (JSON.parse(v.details) as { nonce: string }).nonce);
    expect(new Set(nonces).size).to.equal(nonces.length);
    const row = (
      await knex.raw(`select a.attestation_count,
        (select count(*)::int from verifier_attestation_history h where h.agent_id = a.agent_id and h.outcome = 'pass') as passes
        from verifier_agents a where a.agent_id = ?`, [AGENT])
    ).rows[0] as { attestation_count: number; passes: number };
    expect(row.passes).to.equal(row.attestation_count);
  });
});
