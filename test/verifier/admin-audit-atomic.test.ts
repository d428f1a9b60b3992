import { expect } from 'chai';
import { pino } from 'pino';
import { livenessBody, softwarePushEnrolment, useTokenVerifier } from './helpers/token-verifier.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';

const TOKEN_ID = '0b6ac4b0-6c4c-4d4e-9a8f-4b0e5c1d2a3f';

/**
 * An admin change and its audit record commit together or not at all: while the audit log cannot be
 * written, a change is answered 500 and is not stored. A refused request changed nothing; its record
 * is best effort, and its loss is logged at error.
 */
describe('admin changes commit with their audit record or not at all', function () {
  this.timeout(60_000);
  const errors: string[] = [];
  const v = useTokenVerifier(pino({ level: 'error' }, { write: (line: string) => void errors.push(line) }));
  let agentBody: Record<string, unknown>;

  before(async function () {
    const operator = await v.token('operator', 'default');
    expect((await v.call('POST', '/v2.3/mbpolicies/kept', operator, { mb_policy: MINIMAL_REFSTATE })).status).to.equal(201);
    expect((await v.call('POST', '/v2.3/liveness/kept-node', operator, livenessBody(v.verifier.caCert))).status).to.equal(200);
    agentBody = await softwarePushEnrolment();
    expect((await v.call('POST', '/v2.5/agents/kept-agent', operator, agentBody)).status).to.equal(200);
    // From now on every audit insert fails (a full disk, a lost connection, a lock timeout).
    await v.knex.raw(`create function refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'audit write failed'; end $$`);
    await v.knex.raw('create trigger refuse_audit before insert on audit_records for each row execute function refuse_audit()');
  });

  it('answers 500 and stores none of an agent, policy, liveness node or token revocation change whose record cannot be written', async function () {
    const operator = await v.token('operator', 'default');
    const admin = await v.token('admin', 'default');
    const before = (await v.knex('audit_records').count({ n: '*' }).first()) as { n: string };
    const state = async (): Promise<unknown> => (await v.knex('verifier_agents').where({ agent_id: 'kept-agent' }).first('operational_state')) as unknown;
    const agentBefore = await state();
    const replies = [
      await v.call('POST', '/v2.5/agents/added-agent', operator, agentBody),
      await v.call('PUT', '/v2.5/agents/kept-agent/stop', operator),
      await v.call('DELETE', '/v2.5/agents/kept-agent', admin),
      await v.call('POST', '/v2.3/mbpolicies/added', operator, { mb_policy: MINIMAL_REFSTATE }),
      await v.call('PUT', '/v2.3/mbpolicies/kept', operator, { mb_policy: MINIMAL_REFSTATE.replace('.*', 'quiet') }),
      await v.call('DELETE', '/v2.3/mbpolicies/kept', admin),
      await v.call('POST', '/v2.3/liveness/added-node', operator, livenessBody(v.verifier.caCert)),
      await v.call('DELETE', '/v2.3/liveness/kept-node', admin),
      await v.call('DELETE', `/v2.3/tokens/${TOKEN_ID}`, admin),
    ];
    expect(replies.map((reply) => reply.status)).to.deep.equal([500, 500, 500, 500, 500, 500, 500, 500, 500]);
    expect((await v.knex('verifier_agents').select('agent_id')).map((row: { agent_id: string }) => row.agent_id)).to.deep.equal(['kept-agent']);
    expect(await state()).to.deep.equal(agentBefore);
    const policies = (await v.knex('verifier_mb_policies').select('name', 'mb_policy')) as { name: string; mb_policy: string }[];
    expect(policies).to.deep.equal([{ name: 'kept', mb_policy: MINIMAL_REFSTATE }]);
    expect((await v.knex('verifier_liveness').select('agent_id')).map((row: { agent_id: string }) => row.agent_id)).to.deep.equal(['kept-node']);
    expect(await v.knex('api_token_revocations').where({ jti: TOKEN_ID }).first()).to.equal(undefined);
    expect(((await v.knex('audit_records').count({ n: '*' }).first()) as { n: string }).n).to.equal(before.n);
  });

  it('answers a refused request as refused, and logs at error that its record was lost', async function () {
    errors.length = 0;
    const refused = await v.call('DELETE', '/v2.3/mbpolicies/no-such-policy', await v.token('admin', 'default'));
    expect(refused.status, refused.body).to.equal(404);
    const lost = errors.map((line) => JSON.parse(line) as { msg: string; level: number; status: number }).filter((entry) => entry.msg === 'admin action not audited');
    expect(lost.map((entry) => [entry.level, entry.status])).to.deep.equal([[50, 404]]);
  });
});
