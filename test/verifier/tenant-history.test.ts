import { expect } from 'chai';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { livenessBody, useTokenVerifier } from './helpers/token-verifier.js';

const SECRET_FAILURE = JSON.stringify([
  { event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: { message: 'SECRET-PATH /opt/tenant-a/secret-binary' }, recoverable: false },
]);

/**
 * A deleted agent's rounds and audit stream stay, and another tenant may enrol its id: the history
 * route and the node page show a tenant only rows written for its own node of the id, and not
 * another tenant's actions on the id (not even its refused ones).
 */
describe('history and node timeline by tenant', function () {
  this.timeout(60_000);
  const v = useTokenVerifier();

  it("another tenant reads neither a deleted agent's rounds nor, once it enrols the id, its rounds and admin actions on its node page", async function () {
    const id = 'victim-of-tenant-a';
    const round = { agent_id: id, verifier_id: 'default', outcome: 'fail', operational_state: 7, attestation_count: 3, failures: SECRET_FAILURE };
    // Tenant A's agent was attested, then deleted; a row of unknown tenant (written before rows had one).
    await v.knex('verifier_attestation_history').insert([{ ...round, tenant: 'tenant-a' }, { ...round, tenant: null }]);
    await v.knex('verifier_liveness_events').insert({ agent_id: id, tenant: 'tenant-a', from_status: 'alive', to_status: 'failed', reason: 'SECRET-REASON of tenant-a' });
    const audit = new AuditLog(v.knex, loadOrCreateAuditKey(v.dataDir));
    await audit.append({ stream: id, at: new Date().toISOString(), actor: 'token:alice@corp-a (admin@tenant-a)', action: 'DELETE /agents/:agent_id', agentId: id, details: { params: { agent_id: id }, status: 200, tenant: 'tenant-a' } });

    const viewerB = await v.token('viewer', 'tenant-b');
    const historyB = await v.call('GET', `/v2.3/agents/${id}/history`, viewerB);
    expect(historyB.status, historyB.body).to.equal(200);
    expect(JSON.parse(historyB.body).results.history).to.deep.equal([]);
    const historyA = await v.call('GET', `/v2.3/agents/${id}/history`, await v.token('viewer', 'tenant-a'));
    expect(JSON.parse(historyA.body).results.history).to.have.length(1);

    expect((await v.call('POST', `/v2.3/liveness/${id}`, await v.token('operator', 'tenant-b'), livenessBody(v.verifier.caCert))).status).to.equal(200);
    // Tenant A's admin is refused on B's node (404) and the attempt is audited on the id's stream.
    expect((await v.call('DELETE', `/v2.3/liveness/${id}`, await v.token('admin', 'tenant-a', 'mallory@corp-a'))).status).to.equal(404);
    const page = await v.call('GET', `/dashboard/nodes/${id}`, viewerB);
    expect(page.status).to.equal(200);
    expect(page.body).to.include('POST /liveness/:agent_id by token:operator-of-tenant-b');
    expect(page.body).to.not.include('SECRET-PATH');
    expect(page.body).to.not.include('SECRET-REASON');
    expect(page.body).to.not.include('alice@corp-a');
    expect(page.body).to.not.include('mallory@corp-a');
  });

  it('refuses to enrol a node named "fleet", the audit stream of every tenant\'s policy and token actions', async function () {
    const operator = await v.token('operator', 'tenant-b');
    const liveness = await v.call('POST', '/v2.3/liveness/fleet', operator, livenessBody(v.verifier.caCert));
    expect(liveness.status, liveness.body).to.equal(400);
    expect(liveness.body).to.include('reserved');
    const tpm = await v.call('POST', '/v2.5/agents/fleet', operator, {
      attestation_mode: 'push', tpm_policy: JSON.stringify({ mask: '0x400' }), runtime_policy: '', accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['ecc'], accept_tpm_signing_algs: ['ecdsa'], ak_tpm: Buffer.from('not an AK').toString('base64'),
    });
    expect(tpm.status, tpm.body).to.equal(400);
    expect(tpm.body).to.include('reserved');
    expect(await v.knex('verifier_liveness').where({ agent_id: 'fleet' }).first()).to.equal(undefined);
  });
});
