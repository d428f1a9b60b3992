import { expect } from 'chai';
import knexFactory from 'knex';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { DashboardQueries } from '../../lib/dashboard/dashboard-queries.js';
import { statusFreshnessBounds } from '../../lib/verifier/freshness-bounds.js';
import { VerifierConfig } from '../../lib/verifier/verifier-config.js';
import { FLEET_MB_POLICY, FLEET_RUNTIME_POLICY } from '../../lib/fleet/fleet.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { startTestFleet, type TestFleet } from './fleet-fixture.js';

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/** A runtime policy that lets every file pass: what a tampering operator would put in. */
const EXCLUDE_EVERYTHING = JSON.stringify({
  meta: { version: 1, generator: 3 },
  release: 0,
  digests: {},
  excludes: ['.*'],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});

/**
 * Named policies belong to a tenant: a token sees, lists, changes and enrols with only its own
 * tenant's; another tenant's is answered exactly as an unknown one. The fleet (enrolled with a client
 * certificate) is in `default` and uses the policies `ironlime-fleet`.
 */
describe('named policies by tenant: another tenant neither reads nor changes them', function () {
  this.timeout(120_000);
  let fleet: TestFleet;
  const fake = new FakeAgent();

  before(async function () {
    fleet = await startTestFleet(1, 0.5);
  });

  after(async function () {
    await fleet?.close();
  });

  /** A valid enrolment body naming stored policies; the agent address is closed, so it only retries. */
  function enrolmentNaming(runtimePolicyName: string, mbPolicyName = ''): Record<string, unknown> {
    return {
      v: null,
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: 1,
      tpm_policy: JSON.stringify({ mask: '0x400' }),
      runtime_policy: '',
      runtime_policy_name: runtimePolicyName,
      mb_policy: null,
      mb_policy_name: mbPolicyName,
      ima_sign_verification_keys: '',
      metadata: '{}',
      revocation_key: '',
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['ecc', 'rsa'],
      accept_tpm_signing_algs: ['ecschnorr', 'rsassa'],
      ak_tpm: fake.akTpm,
      mtls_cert: fleet.caCert,
      supported_version: '2.3',
    };
  }

  it("another tenant's viewer cannot read, nor its operator or admin change, the policy the default tenant's agent uses; a tampered agent is caught", async function () {
    const [viewerB, operatorB, adminB] = await Promise.all([fleet.token('viewer', 'tenant-b'), fleet.token('operator', 'tenant-b'), fleet.token('admin', 'tenant-b')]);
    const stored = (await fleet.admin.withSchema(fleet.schema).table('verifier_runtime_policies').where({ name: FLEET_RUNTIME_POLICY }).first()) as { runtime_policy: string };

    const unknown = await fleet.call('GET', '/v2.3/allowlists/no-such-policy', bearer(viewerB));
    const read = await fleet.call('GET', `/v2.3/allowlists/${FLEET_RUNTIME_POLICY}`, bearer(viewerB));
    expect(read.status).to.equal(404);
    expect(JSON.parse(read.body).status).to.equal(JSON.parse(unknown.body).status.replace('no-such-policy', FLEET_RUNTIME_POLICY));
    expect(read.body).to.not.include('digests');
    const mbRead = await fleet.call('GET', `/v2.3/mbpolicies/${FLEET_MB_POLICY}`, bearer(viewerB));
    expect(mbRead.status).to.equal(404);
    expect(JSON.parse((await fleet.call('GET', '/v2.3/allowlists', bearer(viewerB))).body).results['runtimepolicy names']).to.deep.equal([]);
    expect(JSON.parse((await fleet.call('GET', '/v2.3/mbpolicies', bearer(viewerB))).body).results['mbpolicy names']).to.deep.equal([]);

    const put = await fleet.call('PUT', `/v2.3/allowlists/${FLEET_RUNTIME_POLICY}`, bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) });
    expect(put.status, put.body).to.equal(404);
    const refstate = ((await fleet.admin.withSchema(fleet.schema).table('verifier_mb_policies').where({ name: FLEET_MB_POLICY }).first()) as { mb_policy: string }).mb_policy;
    const mbPut = await fleet.call('PUT', `/v2.3/mbpolicies/${FLEET_MB_POLICY}`, bearer(operatorB), { mb_policy: refstate });
    expect(mbPut.status, mbPut.body).to.equal(404);
    // Not even "in use" (409): for tenant B it does not exist.
    expect((await fleet.call('DELETE', `/v2.3/allowlists/${FLEET_RUNTIME_POLICY}`, bearer(adminB))).status).to.equal(404);
    expect((await fleet.call('DELETE', `/v2.3/mbpolicies/${FLEET_MB_POLICY}`, bearer(adminB))).status).to.equal(404);
    const after = (await fleet.admin.withSchema(fleet.schema).table('verifier_runtime_policies').where({ name: FLEET_RUNTIME_POLICY }).first()) as { runtime_policy: string };
    expect(after.runtime_policy).to.equal(stored.runtime_policy);

    const victim = fleet.fleet.agents[0];
    if (victim === undefined) throw new Error('no agent');
    await victim.tamper();
    const failed = await fleet.fleet.tenant.waitForState(victim.uuid, [OperationalState.INVALID_QUOTE, OperationalState.FAILED], { timeoutMs: 10_000, intervalMs: 50 });
    expect(failed.operational_state).to.equal(OperationalState.INVALID_QUOTE);
  });

  it("the owning tenant's token reads its policy; a client certificate sees every tenant's", async function () {
    const viewer = await fleet.token('viewer', 'default');
    const read = await fleet.call('GET', `/v2.3/allowlists/${FLEET_RUNTIME_POLICY}`, bearer(viewer));
    expect(read.status, read.body).to.equal(200);
    expect(JSON.parse((await fleet.call('GET', '/v2.3/mbpolicies', bearer(viewer))).body).results['mbpolicy names']).to.include(FLEET_MB_POLICY);

    const operatorB = await fleet.token('operator', 'tenant-b');
    expect((await fleet.call('POST', '/v2.3/allowlists/tenant-b-policy', bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) })).status).to.equal(201);
    const byCertificate = await fleet.fleet.tenant.listRuntimePolicies();
    expect(byCertificate).to.include.members([FLEET_RUNTIME_POLICY, 'tenant-b-policy']);
  });

  it("a tenant creates, lists, updates and deletes its own policies, which other tenants do not see; a name taken by another tenant is a conflict that shows nothing of it", async function () {
    const [viewerB, operatorB, adminB] = await Promise.all([fleet.token('viewer', 'tenant-b'), fleet.token('operator', 'tenant-b'), fleet.token('admin', 'tenant-b')]);
    const viewerA = await fleet.token('viewer', 'default');
    const name = 'tenant-b-own';
    expect((await fleet.call('POST', `/v2.3/allowlists/${name}`, bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) })).status).to.equal(201);
    const row = (await fleet.admin.withSchema(fleet.schema).table('verifier_runtime_policies').where({ name }).first()) as { tenant: string };
    expect(row.tenant).to.equal('tenant-b');
    expect((await fleet.call('GET', `/v2.3/allowlists/${name}`, bearer(viewerB))).status).to.equal(200);
    expect(JSON.parse((await fleet.call('GET', '/v2.3/allowlists', bearer(viewerB))).body).results['runtimepolicy names']).to.include(name).and.not.include(FLEET_RUNTIME_POLICY);
    expect((await fleet.call('GET', `/v2.3/allowlists/${name}`, bearer(viewerA))).status).to.equal(404);
    expect(JSON.parse((await fleet.call('GET', '/v2.3/allowlists', bearer(viewerA))).body).results['runtimepolicy names']).to.not.include(name);
    expect((await fleet.call('PUT', `/v2.3/allowlists/${name}`, bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) })).status).to.equal(201);

    const taken = await fleet.call('POST', `/v2.3/allowlists/${FLEET_RUNTIME_POLICY}`, bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) });
    expect(taken.status).to.equal(409);
    expect(taken.body).to.not.include('ironlime-fleet/');
    const refstate = ((await fleet.admin.withSchema(fleet.schema).table('verifier_mb_policies').where({ name: FLEET_MB_POLICY }).first()) as { mb_policy: string }).mb_policy;
    const mbTaken = await fleet.call('POST', `/v2.3/mbpolicies/${FLEET_MB_POLICY}`, bearer(operatorB), { mb_policy: refstate });
    expect(mbTaken.status).to.equal(409);
    expect(mbTaken.body).to.not.include('scrtm');

    expect((await fleet.call('DELETE', `/v2.3/allowlists/${name}`, bearer(adminB))).status).to.equal(204);
    expect((await fleet.call('GET', `/v2.3/allowlists/${name}`, bearer(viewerB))).status).to.equal(404);
  });

  it("an enrolment may name only its own tenant's policies: another tenant's is 404, as an unknown one, and nothing is stored", async function () {
    const operatorB = await fleet.token('operator', 'tenant-b');
    for (const [body, what] of [
      [enrolmentNaming(FLEET_RUNTIME_POLICY), 'runtime'],
      [enrolmentNaming('', FLEET_MB_POLICY), 'measured boot'],
    ] as const) {
      const id = `tenant-b-borrower-${what.replace(' ', '-')}`;
      const enrolled = await fleet.call('POST', `/v2.3/agents/${id}`, bearer(operatorB), body);
      expect(enrolled.status, enrolled.body).to.equal(404);
      expect(JSON.parse(enrolled.body).status).to.include(what);
      expect(await fleet.admin.withSchema(fleet.schema).table('verifier_agents').where({ agent_id: id }).first()).to.equal(undefined);
    }

    const own = 'tenant-b-enrolment-policy';
    expect((await fleet.call('POST', `/v2.3/allowlists/${own}`, bearer(operatorB), { runtime_policy: b64(EXCLUDE_EVERYTHING) })).status).to.equal(201);
    const enrolled = await fleet.call('POST', '/v2.3/agents/tenant-b-own-policy-agent', bearer(operatorB), enrolmentNaming(own));
    expect(enrolled.status, enrolled.body).to.equal(200);
    // A default-tenant enrolment (a client certificate's, or a default token's) may not name tenant B's.
    const operatorA = await fleet.token('operator', 'default');
    expect((await fleet.call('POST', '/v2.3/agents/default-borrower', bearer(operatorA), enrolmentNaming(own))).status).to.equal(404);
  });

  it("the dashboard lists a tenant's viewer only its own policies its agents use, even an agent enrolled with another's before policies had tenants", async function () {
    const knex = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, searchPath: [fleet.schema], pool: { min: 0, max: 1 } });
    try {
      // As an enrolment before this fix could leave it: tenant B's agent on the default tenant's policy.
      await knex('verifier_agents').update({ mb_policy_name: FLEET_MB_POLICY }).where({ agent_id: 'tenant-b-own-policy-agent' });
      const queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
      const seenByB = (await queries.policiesInUse('tenant-b')).uses.map((use) => `${use.kind} ${use.name} ${use.agents}`);
      expect(seenByB).to.deep.equal(['runtime tenant-b-enrolment-policy 1']);
      const seenByDefault = (await queries.policiesInUse('default')).uses.map((use) => `${use.kind} ${use.name} ${use.agents}`);
      expect(seenByDefault).to.deep.equal([`runtime ${FLEET_RUNTIME_POLICY} 1`, `measured boot ${FLEET_MB_POLICY} 1`]);
    } finally {
      await knex.destroy();
    }
  });

  it("a node's timeline shows its tenant's viewer no policy action of another tenant's token (the refused PUTs above), which the audit record names in details.tenant", async function () {
    const knex = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, searchPath: [fleet.schema], pool: { min: 0, max: 1 } });
    try {
      const records = (await knex('audit_records').select('actor', 'details').where({ stream: 'fleet' }).whereLike('actor', '%(operator@tenant-b)')) as { details: string }[];
      const refused = records.map((record) => JSON.parse(record.details) as { params: { name: string }; status: number; tenant?: string }).filter((d) => d.params.name === FLEET_RUNTIME_POLICY);
      expect(refused.length).to.be.greaterThan(0);
      // The PUTs of the first test (404) and the POST of a taken name (409).
      expect(refused.map((d) => `${d.tenant} ${d.status}`)).to.include.members(['tenant-b 404', 'tenant-b 409']);

      const queries = new DashboardQueries(knex, 11, statusFreshnessBounds(new VerifierConfig()), () => Date.now() / 1000);
      const victim = fleet.fleet.agents[0];
      const node = await queries.node('default', victim?.uuid ?? '');
      if (node === undefined) throw new Error('no node');
      const admin = async (viewer: string | undefined): Promise<string[]> =>
        (await queries.timeline(viewer, node)).filter((entry) => entry.kind === 'admin').map((entry) => entry.title);
      expect((await admin(undefined)).some((title) => title.endsWith('(operator@tenant-b)'))).to.equal(true);
      expect((await admin('default')).filter((title) => title.includes('@tenant-b'))).to.deep.equal([]);
    } finally {
      await knex.destroy();
    }
  });
});
