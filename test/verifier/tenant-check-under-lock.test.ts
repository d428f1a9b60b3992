import { expect } from 'chai';
import type { Knex } from 'knex';
import { livenessBody, softwarePushEnrolment, useTokenVerifier } from './helpers/token-verifier.js';

/**
 * The admin gate checks a node's tenant on the request's headers; the node may be enrolled by another
 * tenant before the request's body arrives. Every change is checked again under the node's lock:
 * tenant B's request held over tenant A's enrolment is answered 404 (as a node that is not there) and
 * changes nothing of A's.
 */
describe("admin changes check the node's tenant under its lock, not only at the headers", function () {
  this.timeout(60_000);
  const v = useTokenVerifier();
  let tpmBody: Record<string, unknown>;
  let operatorA: string;
  let operatorB: string;
  let adminB: string;
  let viewerB: string;

  before(async function () {
    tpmBody = await softwarePushEnrolment();
    operatorA = await v.token('operator', 'tenant-a');
    operatorB = await v.token('operator', 'tenant-b');
    adminB = await v.token('admin', 'tenant-b');
    viewerB = await v.token('viewer', 'tenant-b');
  });

  async function livenessRow(id: string): Promise<{ tenant: string; port: number } | undefined> {
    return v.knex('verifier_liveness').select('tenant', 'port').where({ agent_id: id }).first();
  }

  async function agentRow(id: string): Promise<{ tenant: string; operational_state: number } | undefined> {
    return v.knex('verifier_agents').select('tenant', 'operational_state').where({ agent_id: id }).first();
  }

  it("does not let tenant B's liveness enrolment replace tenant A's made while B's body was held", async function () {
    const held = await v.heldCall('POST', '/v2.3/liveness/taken-node', operatorB, { ...livenessBody(v.verifier.caCert), port: 6666 });
    expect((await v.call('POST', '/v2.3/liveness/taken-node', operatorA, livenessBody(v.verifier.caCert))).status).to.equal(200);
    const b = await held.send();
    expect(b.status, b.body).to.equal(404);
    expect(await livenessRow('taken-node')).to.deep.equal({ tenant: 'tenant-a', port: 9 });
  });

  it("does not let tenant B delete tenant A's liveness enrolment made while B's request was held", async function () {
    const held = await v.heldCall('DELETE', '/v2.3/liveness/kept-node', adminB, {});
    expect((await v.call('POST', '/v2.3/liveness/kept-node', operatorA, livenessBody(v.verifier.caCert))).status).to.equal(200);
    const b = await held.send();
    expect(b.status, b.body).to.equal(404);
    expect(await livenessRow('kept-node')).to.deep.equal({ tenant: 'tenant-a', port: 9 });
  });

  it("answers tenant B's TPM enrolment of an id tenant A enrolled meanwhile (either kind) 404, not 409", async function () {
    const heldOverLiveness = await v.heldCall('POST', '/v2.5/agents/node-of-a', operatorB, tpmBody);
    expect((await v.call('POST', '/v2.3/liveness/node-of-a', operatorA, livenessBody(v.verifier.caCert))).status).to.equal(200);
    const overLiveness = await heldOverLiveness.send();
    expect(overLiveness.status, overLiveness.body).to.equal(404);
    const heldOverTpm = await v.heldCall('POST', '/v2.5/agents/agent-of-a', operatorB, tpmBody);
    expect((await v.call('POST', '/v2.5/agents/agent-of-a', operatorA, tpmBody)).status).to.equal(200);
    const overTpm = await heldOverTpm.send();
    expect(overTpm.status, overTpm.body).to.equal(404);
    expect(await agentRow('node-of-a')).to.equal(undefined);
    expect((await agentRow('agent-of-a'))?.tenant).to.equal('tenant-a');
  });

  for (const [method, suffix, token] of [['DELETE', '', () => adminB], ['PUT', '/stop', () => operatorB], ['PUT', '/reactivate', () => operatorB]] as const) {
    it(`does not let tenant B's ${method} /agents/{id}${suffix} change tenant A's agent enrolled while B's request was held`, async function () {
      const id = `changed-${method.toLowerCase()}${suffix.replace('/', '-')}`;
      const held = await v.heldCall(method, `/v2.5/agents/${id}${suffix}`, token(), {});
      expect((await v.call('POST', `/v2.5/agents/${id}`, operatorA, tpmBody)).status).to.equal(200);
      const before = await agentRow(id);
      const b = await held.send();
      expect(b.status, b.body).to.equal(404);
      expect(await agentRow(id)).to.deep.equal(before);
    });
  }

  // A GET has no body to hold: its gate and its read run back to back. The gate's own look-up of the id
  // is made to miss it, as if tenant A enrolled it just after the gate ran.
  for (const [kind, enrol] of [
    ['agents', (id: string) => v.call('POST', `/v2.5/agents/${id}`, operatorA, tpmBody)],
    ['liveness', (id: string) => v.call('POST', `/v2.3/liveness/${id}`, operatorA, livenessBody(v.verifier.caCert))],
  ] as const) {
    it(`does not show tenant B the status of tenant A's /${kind}/{id} enrolled after B's request passed the gate`, async function () {
      const id = `read-${kind}`;
      expect((await enrol(id)).status).to.equal(200);
      const seen = await v.call('GET', `/v2.5/${kind}/${id}`, viewerB);
      expect(seen.status, 'the gate itself refuses it').to.equal(404);
      const blind = hideFromGate(v.knex, id);
      try {
        const b = await v.call('GET', `/v2.5/${kind}/${id}`, viewerB);
        expect(b.status, b.body).to.equal(404);
        expect(b.body).to.equal(seen.body);
      } finally {
        blind();
      }
    });
  }
});

/**
 * Makes the admin gate's look-up of a node's tenant (`select "tenant" from …`, without a lock) miss
 * `agentId` until the returned function is called: the gate then sees no node, as before an enrolment.
 */
function hideFromGate(knex: Knex, agentId: string): () => void {
  const listener = (query: { sql: string; bindings?: unknown[] }): void => {
    if (!/^select "tenant" from "verifier_(agents|liveness)"/.test(query.sql) || query.sql.includes('for update')) return;
    const at = query.bindings?.indexOf(agentId) ?? -1;
    if (at >= 0 && query.bindings !== undefined) query.bindings[at] = `${agentId}-not-yet-enrolled`;
  };
  knex.client.on('query', listener);
  return () => knex.client.removeListener('query', listener);
}
