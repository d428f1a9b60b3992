import { expect } from 'chai';
import { livenessBody, softwarePushEnrolment, useTokenVerifier } from './helpers/token-verifier.js';

/**
 * One id is either attested with a TPM or checked for liveness, never both, whichever tenant asks
 * and in whichever order, even when the two enrolments run at the same time; another tenant's node is
 * not revealed (404 as for no agent, not 409).
 */
describe('liveness and TPM enrolments of one id exclude each other', function () {
  this.timeout(60_000);
  const v = useTokenVerifier();
  let tpmBody: Record<string, unknown>;

  before(async function () {
    tpmBody = await softwarePushEnrolment();
  });

  it('refuses (409) the TPM enrolment of an id its tenant enrolled for liveness, and answers another tenant 404 as for no agent', async function () {
    expect((await v.call('POST', '/v2.3/liveness/shared-node-id', await v.token('operator', 'tenant-a'), livenessBody(v.verifier.caCert))).status).to.equal(200);
    const refused = await v.call('POST', '/v2.5/agents/shared-node-id', await v.token('operator', 'tenant-a'), tpmBody);
    expect(refused.status, refused.body).to.equal(409);
    expect(JSON.parse(refused.body).status).to.include('checked for liveness');
    const hidden = await v.call('POST', '/v2.5/agents/shared-node-id', await v.token('operator', 'tenant-b'), tpmBody);
    const unknown = await v.call('GET', '/v2.5/agents/no-such-node', await v.token('viewer', 'tenant-b'));
    expect(hidden.status, hidden.body).to.equal(404);
    expect(JSON.parse(hidden.body).status).to.equal(JSON.parse(unknown.body).status.replace('no-such-node', 'shared-node-id'));
    expect(await v.knex('verifier_agents').where({ agent_id: 'shared-node-id' }).first()).to.equal(undefined);
  });

  it('lets only one of a TPM and a liveness enrolment of one id, sent together, in', async function () {
    const operator = await v.token('operator', 'tenant-a');
    for (let n = 0; n < 10; n += 1) {
      const id = `raced-${n}`;
      const [tpm, liveness] = await Promise.all([v.call('POST', `/v2.5/agents/${id}`, operator, tpmBody), v.call('POST', `/v2.3/liveness/${id}`, operator, livenessBody(v.verifier.caCert))]);
      expect([tpm.status, liveness.status].sort(), `${tpm.body} ${liveness.body}`).to.deep.equal([200, 409]);
      const rows = (await v.knex('verifier_agents').where({ agent_id: id }).count({ n: '*' }).first()) as { n: string };
      const checked = (await v.knex('verifier_liveness').where({ agent_id: id }).count({ n: '*' }).first()) as { n: string };
      expect(Number(rows.n) + Number(checked.n), id).to.equal(1);
    }
  });
});
