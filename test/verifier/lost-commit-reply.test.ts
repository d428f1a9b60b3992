import { expect } from 'chai';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'lost-commit-1';

/**
 * The connection to PostgreSQL is cut after the server committed a batch of rounds but before the
 * verifier saw the reply to its COMMIT (a proxy swallows that reply). The verifier cannot know whether
 * the round is stored and writes it again; the round must then be stored once: one history row per
 * nonce, one audit verdict per nonce, and the agent's `pass` rows equal to its `attestation_count`.
 */
describe('verifier: a round whose COMMIT reply is lost is stored once (real PostgreSQL)', function () {
  this.timeout(60_000);
  let proxy: CommitReplyDropper;
  let fixture: SingleAgentVerifier;

  before(async function () {
    proxy = new CommitReplyDropper();
    await proxy.start();
    fixture = await startSingleAgentVerifier(AGENT, 3, proxy.port);
  });

  after(async function () {
    await fixture?.close();
    await proxy?.close();
  });

  it('writes the round again only when it is not stored, so no verdict is duplicated', async function () {
    const knex = fixture.knex;
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
