import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { SignJWT, UnsecuredJWT } from 'jose';
import { issueApiToken, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../lib/auth/api-token.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { runCli } from '../helpers/cli-runner.js';
import { closedPort } from '../helpers/ports.js';
import { startTestFleet, type TestFleet } from './fleet-fixture.js';

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

describe('verifier admin API: certificate or bearer token, by role and tenant, audited', function () {
  this.timeout(120_000);
  let fleet: TestFleet;
  let ids: string[];

  before(async function () {
    fleet = await startTestFleet(2, 0.5);
    ids = fleet.fleet.agents.map((agent) => agent.uuid);
  });

  after(async function () {
    await fleet?.close();
  });

  it('a viewer of the agents\' tenant reads them; a viewer of another tenant sees nothing of them', async function () {
    const mine = await fleet.token('viewer', 'default');
    const other = await fleet.token('viewer', 'tenant-b');
    const list = await fleet.call('GET', '/v2.3/agents', bearer(mine));
    expect(list.status, list.body).to.equal(200);
    expect(JSON.parse(list.body).results.uuids).to.have.members(ids);
    expect((await fleet.call('GET', `/v2.3/agents/${ids[0]}`, bearer(mine))).status).to.equal(200);
    const hidden = await fleet.call('GET', '/v2.3/agents', bearer(other));
    expect(JSON.parse(hidden.body).results.uuids).to.deep.equal([]);
    const status = await fleet.call('GET', `/v2.3/agents/${ids[0]}`, bearer(other));
    expect(status.status).to.equal(404);
    expect(status.body).to.not.include('Get Quote');
    // Even an admin of another tenant cannot touch it: it does not exist for them.
    expect((await fleet.call('DELETE', `/v2.3/agents/${ids[0]}`, bearer(await fleet.token('admin', 'tenant-b')))).status).to.equal(404);
  });

  it('a role too low is 403; expired, foreign-signed, HS256 and none tokens are 401; no credential is 403', async function () {
    const viewer = await fleet.token('viewer', 'default');
    const operator = await fleet.token('operator', 'default');
    expect((await fleet.call('PUT', `/v2.3/agents/${ids[1]}/stop`, bearer(viewer))).status).to.equal(403);
    const refusedDelete = await fleet.call('DELETE', `/v2.3/agents/${ids[1]}`, bearer(operator));
    expect(refusedDelete.status).to.equal(403);
    expect(refusedDelete.body).to.include('may not delete');

    const key = loadOrCreateTokenKey(fleet.dataDir).privateKey;
    const expired = await issueApiToken({ subject: 'x', role: 'admin', tenant: 'default', ttlSeconds: 1 }, key, new Date(Date.now() - 3_600_000));
    const foreign = await issueApiToken({ subject: 'x', role: 'admin', tenant: 'default', ttlSeconds: 600 }, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const hs256 = await new SignJWT({ role: 'admin', tenant: 'default' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('x').setIssuedAt().setExpirationTime('1h').sign(new Uint8Array(32));
    const none = new UnsecuredJWT({ role: 'admin', tenant: 'default' }).setIssuer(TOKEN_ISSUER).setAudience(TOKEN_AUDIENCE).setSubject('x').setIssuedAt().setExpirationTime('1h').encode();
    for (const [token, why] of [
      [expired, 'expired'],
      [foreign, 'bad signature'],
      [hs256, 'algorithm not allowed'],
      [none, ''],
    ] as const) {
      const reply = await fleet.call('DELETE', `/v2.3/agents/${ids[1]}`, bearer(token));
      expect(reply.status, why).to.equal(401);
      expect(JSON.parse(reply.body).status).to.include(`token refused: ${why}`);
    }
    const bare = await fleet.call('GET', '/v2.3/agents');
    expect(bare.status).to.equal(403);
    expect(JSON.parse(bare.body).status).to.equal('client certificate required');
    const status = await fleet.fleet.tenant.getStatus(ids[1] as string);
    expect(status.operational_state).to.equal(OperationalState.GET_QUOTE);
  });

  it('an operator stops and an admin deletes; each action is in the signed audit log with who did it, beside the verdicts', async function () {
    const operator = await fleet.token('operator', 'default');
    const admin = await fleet.token('admin', 'default');
    const victim = ids[1] as string;
    expect((await fleet.call('PUT', `/v2.3/agents/${victim}/stop`, bearer(operator))).status).to.equal(200);
    const deleted = await fleet.call('DELETE', `/v2.3/agents/${victim}`, bearer(admin));
    expect([200, 202]).to.include(deleted.status);

    const exported = await runCli(['audit', 'export', '--agent', victim, '--data-dir', fleet.dataDir, '--database', schemaUrl(fleet)]);
    expect(exported.code, exported.stderr).to.equal(0);
    // Every line but the last, the export's signed manifest.
    const records = exported.stdout.trim().split('\n').slice(0, -1).map((line) => JSON.parse(line) as { action: string; actor: string; details: Record<string, unknown> });
    const actions = records.map((record) => `${record.action} ${record.actor}`);
    expect(actions).to.include('PUT /agents/:agent_id/stop token:operator-of-default (operator@default)');
    expect(actions).to.include('DELETE /agents/:agent_id token:admin-of-default (admin@default)');
    const verdicts = records.filter((record) => record.action === 'verdict');
    expect(verdicts.length).to.be.above(0);
    expect(verdicts[0]?.details['outcome']).to.equal('pass');
    expect(verdicts[0]?.actor).to.match(/^verifier:/);
    // The enrolment (mTLS, the fleet's tenant client) is recorded too, with the certificate's name.
    expect(records[0]?.action).to.equal('POST /agents/:agent_id');
    expect(records[0]?.actor).to.match(/^cert:/);
    const file = path.join(fleet.dataDir, 'victim.jsonl');
    writeFileSync(file, exported.stdout);
    const verified = await runCli(['audit', 'verify', file, '--data-dir', fleet.dataDir]);
    expect(verified.code, verified.stdout).to.equal(0);
    expect(verified.stdout).to.include(`${victim}: ok, ${records.length} record(s)`);
  });

  it('the liveness routes follow the same rule: operator enrols in its tenant, viewer reads, admin deletes, another tenant sees nothing; changes are audited', async function () {
    const id = 'liveness-tenant-a-node';
    const url = `/v2.3/liveness/${id}`;
    const body = { identity_mode: 'id-only', ip: '127.0.0.1', port: await closedPort(), mtls_cert: fleet.caCert };
    const [viewerA, operatorA, adminA] = await Promise.all([fleet.token('viewer', 'tenant-a'), fleet.token('operator', 'tenant-a'), fleet.token('admin', 'tenant-a')]);
    const [viewerB, operatorB, adminB] = await Promise.all([fleet.token('viewer', 'tenant-b'), fleet.token('operator', 'tenant-b'), fleet.token('admin', 'tenant-b')]);
    expect((await fleet.call('POST', url, bearer(viewerA), body)).status).to.equal(403);
    const enrolled = await fleet.call('POST', url, bearer(operatorA), body);
    expect(enrolled.status, enrolled.body).to.equal(200);
    const row = (await fleet.admin.withSchema(fleet.schema).table('verifier_liveness').where({ agent_id: id }).first()) as { tenant: string };
    expect(row.tenant).to.equal('tenant-a');

    const read = await fleet.call('GET', url, bearer(viewerA));
    expect(read.status, read.body).to.equal(200);
    expect(JSON.parse(read.body).results).to.include({ agent_id: id, trust_level: 'id-only' });
    // Tenant B gets exactly the answer for a node that does not exist, and cannot take it over or delete it.
    const unknown = await fleet.call('GET', '/v2.3/liveness/no-such-node', bearer(viewerB));
    const hidden = await fleet.call('GET', url, bearer(viewerB));
    expect(hidden.status).to.equal(404);
    expect(JSON.parse(hidden.body).status).to.equal(JSON.parse(unknown.body).status.replace('no-such-node', id));
    expect((await fleet.call('POST', url, bearer(operatorB), body)).status).to.equal(404);
    expect((await fleet.call('DELETE', url, bearer(adminB))).status).to.equal(404);
    expect((await fleet.call('DELETE', url, bearer(operatorA))).status).to.equal(403);
    expect((await fleet.admin.withSchema(fleet.schema).table('verifier_liveness').where({ agent_id: id, tenant: 'tenant-a' }).first()) as unknown).to.not.equal(undefined);
    expect((await fleet.call('DELETE', url, bearer(adminA))).status).to.equal(200);
    expect((await fleet.call('GET', url, bearer(viewerA))).status).to.equal(404);

    const exported = await runCli(['audit', 'export', '--agent', id, '--data-dir', fleet.dataDir, '--database', schemaUrl(fleet)]);
    expect(exported.code, exported.stderr).to.equal(0);
    const actions = exported.stdout.trim().split('\n').slice(0, -1).map((line) => JSON.parse(line) as { action: string; actor: string; details: { status: number } });
    const summary = actions.map((record) => `${record.action} ${record.actor} ${record.details.status}`);
    expect(summary).to.include('POST /liveness/:agent_id token:operator-of-tenant-a (operator@tenant-a) 200');
    expect(summary).to.include('DELETE /liveness/:agent_id token:admin-of-tenant-a (admin@tenant-a) 200');
    // Refused attempts of another tenant are recorded too, with their 404.
    expect(summary).to.include('DELETE /liveness/:agent_id token:admin-of-tenant-b (admin@tenant-b) 404');
  });

  it('an agent attested with a TPM is not also enrolled for liveness (409 to its tenant, 404 to another)', async function () {
    const attested = ids[0] as string;
    const body = { identity_mode: 'id-only', ip: '127.0.0.1', port: await closedPort(), mtls_cert: fleet.caCert };
    const own = await fleet.call('POST', `/v2.3/liveness/${attested}`, bearer(await fleet.token('operator', 'default')), body);
    expect(own.status, own.body).to.equal(409);
    expect(JSON.parse(own.body).status).to.include('attested with a TPM');
    const foreign = await fleet.call('POST', `/v2.3/liveness/${attested}`, bearer(await fleet.token('operator', 'tenant-b')), body);
    expect(foreign.status).to.equal(404);
    expect(JSON.parse(foreign.body).status).to.equal(`agent ${attested} is not enrolled for liveness checks`);
    expect(await fleet.admin.withSchema(fleet.schema).table('verifier_liveness').where({ agent_id: attested }).first()).to.equal(undefined);
  });
});

/** The verifier's database URL in the fleet's schema, for the CLI. */
function schemaUrl(fleet: TestFleet): string {
  return `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${fleet.schema}`)}`;
}
