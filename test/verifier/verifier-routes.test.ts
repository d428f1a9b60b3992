import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { InjectOptions } from 'fastify';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { policyJsonValueBound } from '../../lib/bytes/json-text-bound.js';
import { ADMIN_MAX_JSON_VALUES } from '../../lib/http/json-guard.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { forEachDatabase } from '../helpers/databases.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { rawRequest } from '../registrar/helpers/registrar-fixture.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';
import { MINIMAL_REFSTATE } from '../helpers/refstate-fixture.js';

interface Reply {
  readonly status: number;
  readonly body: { code: number; status: string; results: Record<string, unknown> };
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

const POLICY = JSON.stringify({
  meta: { version: 1, generator: 3 },
  release: 0,
  digests: { '/usr/bin/bash': ['a'.repeat(64)] },
  excludes: [],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});

forEachDatabase('verifier routes (in-process)', (fixture) => {
  let dir: string;
  let verifier: RunningVerifier;
  const fake = new FakeAgent();

  async function call(method: InjectOptions['method'], url: string, payload?: unknown): Promise<Reply> {
    const response = await verifier.service.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }) });
    return { status: response.statusCode, body: response.body === '' ? ({} as Reply['body']) : (JSON.parse(response.body) as Reply['body']) };
  }

  /** A complete, valid enrolment body; the agent address is closed, so the loop keeps retrying. */
  function enrolment(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      v: Buffer.alloc(32, 1).toString('base64'),
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: 1,
      tpm_policy: JSON.stringify({ '15': ['0'.repeat(64)], mask: '0x8400' }),
      runtime_policy: b64(POLICY),
      mb_policy: null,
      mb_policy_name: '',
      ima_sign_verification_keys: '',
      metadata: '{}',
      revocation_key: '',
      accept_tpm_hash_algs: ['sha512', 'sha384', 'sha256'],
      accept_tpm_encryption_algs: ['ecc', 'rsa'],
      accept_tpm_signing_algs: ['ecschnorr', 'rsassa'],
      ak_tpm: fake.akTpm,
      mtls_cert: verifier.clientTls.cert,
      supported_version: '2.6',
      ...overrides,
    };
  }

  let n = 0;
  const newId = (): string => `agent-${fixture.kind}-${(n += 1)}`;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-routes-'));
    verifier = await startVerifier(
      { dataDir: dir, quoteInterval: 0.5, retryInterval: 3600, maxRetries: 100 },
      { database: fixture.database, inProcessForTests: true },
    );
  });

  after(async function () {
    await verifier?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /version is unversioned and lists the 2.x API versions', async function () {
    const reply = await call('GET', '/version');
    expect(reply.status).to.equal(200);
    expect(reply.body.results).to.deep.equal({ current_version: '2.6', supported_versions: ['2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] });
    expect((await call('GET', '/v1.0/agents')).body.status).to.equal('API Version not supported');
  });

  it('validates the enrolment body at the boundary and names the field', async function () {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ extra: 1 }, 400, 'body.extra: should not exist'],
      [{ ak_tpm: undefined }, 400, 'body.ak_tpm: must be a base64 string'],
      [{ cloudagent_port: 70000 }, 400, 'body.cloudagent_port: must be an integer port from 1 to 65535'],
      [{ accept_tpm_hash_algs: 'sha256' }, 400, 'body.accept_tpm_hash_algs: must be an array'],
      [{ tpm_policy: '{not json' }, 400, 'body.tpm_policy: is not valid JSON'],
      [{ tpm_policy: '{"10": ["00"]}' }, 400, 'body.tpm_policy.10: PCR 10 is checked by IMA replay and cannot be in tpm_policy'],
      [{ v: Buffer.alloc(16).toString('base64') }, 400, 'body.v: must be 32 bytes of base64'],
      [{ mtls_cert: undefined }, 400, 'body.mtls_cert: mTLS certificate for agent is required!'],
      [{ metadata: 'nope' }, 400, 'body.metadata: must be JSON text'],
      [{ runtime_policy: b64('{"meta": 1}') }, 400, ''],
      [{ mb_policy: '{"has_secureboot": "yes"}' }, 400, 'has_secureboot must be true or false'],
      [{ ak_tpm: Buffer.from('not a TPM2B_PUBLIC').toString('base64') }, 400, ''],
      [{ runtime_policy: '', runtime_policy_name: 'no-such-policy' }, 404, 'runtime policy no-such-policy not found'],
    ];
    for (const [overrides, status, message] of cases) {
      const id = newId();
      const reply = await call('POST', `/v2.6/agents/${id}`, enrolment(overrides));
      expect(reply.status, JSON.stringify(overrides)).to.equal(status);
      expect(reply.body.status, JSON.stringify(overrides)).to.include(message);
      expect((await call('GET', `/v2.6/agents/${id}`)).status, 'nothing stored').to.equal(404);
    }
    expect((await call('POST', '/v2.6/agents/bad%20id', enrolment())).body.status).to.match(/^params\.agent_id: must be an agent id/);
  });

  it(`refuses enrolment metadata of more than ${ADMIN_MAX_JSON_VALUES} JSON values (counted before it is parsed), storing nothing`, async function () {
    const id = newId();
    const reply = await call('POST', `/v2.6/agents/${id}`, enrolment({ metadata: `[${'{},'.repeat(ADMIN_MAX_JSON_VALUES)}{}]` }));
    expect({ status: reply.status, message: reply.body.status }).to.deep.equal({ status: 400, message: `body.metadata: holds more than ${ADMIN_MAX_JSON_VALUES} JSON values` });
    expect((await call('GET', `/v2.6/agents/${id}`)).status, 'nothing stored').to.equal(404);
  });

  it('refuses a runtime policy upload of 2 MiB of {} (400) by counting its JSON values, storing nothing', async function () {
    const name = `values-${newId()}`;
    const policy = `{"meta":{"version":1},"digests":{},"x":[${'{},'.repeat(700_000)}{}]}`;
    const reply = await call('POST', `/v2.6/allowlists/${name}`, { runtime_policy: b64(policy) });
    expect({ status: reply.status, message: reply.body.status }).to.deep.equal({
      status: 400,
      message: `runtime policy: (document): holds more than ${policyJsonValueBound(policy.length)} JSON values`,
    });
    expect((await call('GET', `/v2.6/allowlists/${name}`)).status, 'nothing stored').to.equal(404);
  });

  it('enrols, shows Keylime status fields, refuses a duplicate with 409, lists ids and bulk status', async function () {
    const id = newId();
    expect((await call('POST', `/v2.6/agents/${id}`, enrolment())).status).to.equal(200);
    const duplicate = await call('POST', `/v2.6/agents/${id}`, enrolment());
    expect(duplicate.status).to.equal(409);
    expect(duplicate.body.status).to.equal(`Agent of uuid ${id} already exists`);
    await eventually('the first (failed) request', async () => (await call('GET', `/v2.6/agents/${id}`)).body.results['operational_state'] === OperationalState.GET_QUOTE_RETRY);
    const status = (await call('GET', `/v2.6/agents/${id}`)).body.results;
    expect(status).to.include({
      operational_state: OperationalState.GET_QUOTE_RETRY,
      v: null,
      ip: '127.0.0.1',
      port: 1,
      meta_data: '{}',
      has_mb_refstate: 0,
      has_runtime_policy: 1,
      verifier_id: 'default',
      attestation_count: 0,
      last_successful_attestation: 0,
      // Keylime says PASS in GET_QUOTE_RETRY even with no success ever; no stale PASS here.
      attestation_status: 'PENDING',
      trusted: false,
      stale: true,
      attestation_period: '0.5s',
      maximum_attestation_interval: '2.5s',
      severity_level: null,
      last_event_id: null,
    });
    expect(status['tpm_policy']).to.equal(enrolment()['tpm_policy']);
    expect(((await call('GET', '/v2.6/agents')).body.results['uuids'] as string[])).to.include(id);
    expect((await call('GET', '/v2.6/agents?verifier=elsewhere')).body.results).to.deep.equal({ uuids: [] });
    const bulk = (await call('GET', '/v2/agents?bulk')).body.results as Record<string, Record<string, unknown>>;
    expect(bulk[id]?.['has_runtime_policy']).to.equal(1);
  });

  it('stop, reactivate and DELETE: 200 for a stopped agent, 202 TERMINATED for a polled one, then 404', async function () {
    // Keylime's Python tenant sends these two PUTs with a JSON Content-Type and an empty body.
    const putAsPythonTenant = async (url: string): Promise<number> =>
      (await verifier.service.app.inject({ method: 'PUT', url, payload: '', headers: { 'content-type': 'application/json' } })).statusCode;
    const id = newId();
    await call('POST', `/v2.6/agents/${id}`, enrolment());
    expect(await putAsPythonTenant(`/v2.6/agents/${id}/stop`)).to.equal(200);
    expect((await call('GET', `/v2.6/agents/${id}`)).body.results).to.include({ operational_state: OperationalState.TENANT_FAILED, attestation_status: 'FAIL' });
    expect(await putAsPythonTenant(`/v2.6/agents/${id}/reactivate`)).to.equal(200);
    await eventually('polled again', async () => (await call('GET', `/v2.6/agents/${id}`)).body.results['operational_state'] === OperationalState.GET_QUOTE_RETRY);
    const terminating = await call('DELETE', `/v2.6/agents/${id}`);
    expect(terminating.status).to.equal(202);
    await eventually('deleted by the loop', async () => (await call('GET', `/v2.6/agents/${id}`)).status === 404);
    expect((await call('DELETE', `/v2.6/agents/${id}`)).body.status).to.equal(`Agent ${id} not found`);
    const stopped = newId();
    await call('POST', `/v2.6/agents/${stopped}`, enrolment());
    await call('PUT', `/v2.6/agents/${stopped}/stop`);
    expect((await call('DELETE', `/v2.6/agents/${stopped}`)).status).to.equal(200);
    expect((await call('GET', `/v2.6/agents/${stopped}`)).status).to.equal(404);
    expect((await call('PUT', `/v2.6/agents/${stopped}/reactivate`)).status).to.equal(404);
  });

  it('runtime-policy store: 201, 409, list, show, update, 404, 204, 409 while an agent uses it; flat allowlists are converted', async function () {
    const name = `policy-${fixture.kind}`;
    expect((await call('POST', `/v2.6/allowlists/${name}`, { runtime_policy: b64(POLICY) })).status).to.equal(201);
    const again = await call('POST', `/v2.6/allowlists/${name}`, { runtime_policy: b64(POLICY) });
    expect(again.status).to.equal(409);
    expect(again.body.status).to.equal(`Runtime policy with name ${name} already exists`);
    expect((await call('GET', '/v2.6/allowlists')).body.results['runtimepolicy names']).to.include(name);
    const shown = (await call('GET', `/v2.6/allowlists/${name}`)).body.results;
    expect(shown['name']).to.equal(name);
    expect(JSON.parse(shown['runtime_policy'] as string)).to.deep.equal(JSON.parse(POLICY));
    const flat = `${'b'.repeat(64)}  /usr/bin/zsh\n`;
    expect((await call('PUT', `/v2.6/allowlists/${name}`, { runtime_policy: b64(flat) })).status).to.equal(201);
    const converted = JSON.parse((await call('GET', `/v2.6/allowlists/${name}`)).body.results['runtime_policy'] as string) as { digests: object };
    expect(converted.digests).to.deep.equal({ '/usr/bin/zsh': ['b'.repeat(64)] });
    expect((await call('PUT', '/v2.6/allowlists/absent', { runtime_policy: b64(POLICY) })).status).to.equal(404);
    expect((await call('POST', `/v2.6/allowlists/${name}-bad`, { runtime_policy: b64('{"meta": {}}') })).status).to.equal(400);
    const id = newId();
    expect((await call('POST', `/v2.6/agents/${id}`, enrolment({ runtime_policy: '', runtime_policy_name: name }))).status).to.equal(200);
    const inUse = await call('DELETE', `/v2.6/allowlists/${name}`);
    expect(inUse.status).to.equal(409);
    expect(inUse.body.status).to.equal(`Runtime policy ${name} is used by an enrolled agent`);
    await call('PUT', `/v2.6/agents/${id}/stop`);
    await call('DELETE', `/v2.6/agents/${id}`);
    const deleted = await verifier.service.app.inject({ method: 'DELETE', url: `/v2.6/allowlists/${name}` });
    expect(deleted.statusCode).to.equal(204);
    expect(deleted.body).to.equal('');
    expect((await call('GET', `/v2.6/allowlists/${name}`)).status).to.equal(404);
  });

  it('measured-boot store from API 2.3: 201, 409, show, list, 400 for a bad refstate, 204', async function () {
    const refstate = MINIMAL_REFSTATE;
    const name = `mb-${fixture.kind}`;
    expect((await call('POST', `/v2.2/mbpolicies/${name}`, { mb_policy: refstate })).status).to.equal(404);
    expect((await call('POST', `/v2.3/mbpolicies/${name}`, { mb_policy: refstate })).status).to.equal(201);
    expect((await call('POST', `/v2.3/mbpolicies/${name}`, { mb_policy: refstate })).status).to.equal(409);
    expect((await call('GET', `/v2.6/mbpolicies/${name}`)).body.results).to.deep.equal({ name, mb_policy: refstate, agents_using: [] });
    expect((await call('GET', '/v2.6/mbpolicies')).body.results['mbpolicy names']).to.include(name);
    expect((await call('PUT', `/v2.6/mbpolicies/${name}`, { mb_policy: '{}' })).status).to.equal(400);
    expect((await call('DELETE', `/v2.6/mbpolicies/${name}`)).status).to.equal(204);
  });

  it('GET /verify/identity checks the enrolled AK, the nonce and the PCR digest', async function () {
    const id = newId();
    await call('POST', `/v2.6/agents/${id}`, enrolment());
    const reply = fake.reply({ nonce: 'identityNonce0000001', mask: 0 });
    const url = (agent: string, nonce: string): string =>
      `/v2.6/verify/identity?agent_uuid=${agent}&quote=${encodeURIComponent(reply.quote)}&nonce=${nonce}&hash_alg=sha256`;
    expect((await call('GET', url(id, 'identityNonce0000001'))).body.results).to.deep.equal({ valid: 1 });
    const stale = (await call('GET', url(id, 'identityNonce0000002'))).body.results;
    expect(stale['valid']).to.equal(0);
    expect(stale['reason']).to.be.a('string').and.not.equal('');
    expect((await call('GET', url('unknown-agent', 'identityNonce0000001'))).status).to.equal(404);
    expect((await call('GET', `/v2.1/verify/identity?agent_uuid=${id}`)).status).to.equal(404);
    expect((await call('GET', '/v2.6/verify/identity?agent_uuid=x&quote=r&nonce=bad-nonce&hash_alg=sha256')).body.status).to.include('query.nonce');
  });

  it('POST /verify/evidence answers valid, claims and failures (200) and refuses bad input (400)', async function () {
    const evidence = (nonce: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
      const reply = fake.reply({ nonce, mask: 1 << 15 });
      return { type: 'tpm', data: { quote: reply.quote, nonce, hash_alg: 'sha256', tpm_ak: fake.akTpm, tpm_ek: '', ...extra } };
    };
    const good = await call('POST', '/v2.5/verify/evidence', evidence('evidenceNonce0000001', { tpm_policy: JSON.stringify({ '15': ['0'.repeat(64)] }) }));
    expect(good.status).to.equal(200);
    expect(good.body.results).to.include({ valid: true });
    expect(good.body.results['failures']).to.deep.equal([]);
    const pcr = await call('POST', '/v2.5/verify/evidence', evidence('evidenceNonce0000002', { tpm_policy: JSON.stringify({ '15': ['1'.repeat(64)] }) }));
    expect(pcr.body.results['valid']).to.equal(false);
    expect((pcr.body.results['failures'] as { type: string }[]).map((f) => f.type)).to.deep.equal(['pcr_validation.invalid_pcr_15']);
    const wrongNonce = evidence('evidenceNonce0000003');
    (wrongNonce['data'] as Record<string, unknown>)['nonce'] = 'somethingElse0000000';
    const refused = await call('POST', '/v2.5/verify/evidence', wrongNonce);
    expect((refused.body.results['failures'] as { type: string }[]).map((f) => f.type)).to.deep.equal(['qoute_validation.quote_validation']);
    expect((await call('POST', '/v2.5/verify/evidence', { ...evidence('n1'), type: 'tee' })).body.status).to.equal('body.type: must be "tpm" (TEE evidence is not supported)');
    expect((await call('POST', '/v2.5/verify/evidence', evidence('n2', { hash_alg: 'md5' }))).status).to.equal(400);
    expect((await call('POST', '/v2.3/verify/evidence', evidence('n3'))).status).to.equal(404);
  });

  it("keeps a known trust level from the enrolment's metadata (the keylime driver's) for the dashboard, nothing else", async function () {
    const levels: Record<string, string> = { [newId()]: JSON.stringify({ trust_level: 'emulated-tpm', node: 'n-1' }), [newId()]: '{"trust_level":"root"}', [newId()]: '[]' };
    for (const [id, metadata] of Object.entries(levels)) {
      expect((await call('POST', `/v2.6/agents/${id}`, enrolment({ metadata }))).status).to.equal(200);
    }
    const rows = (await fixture.database.knex('verifier_agents').select('agent_id', 'trust_level').whereIn('agent_id', Object.keys(levels)).orderBy('agent_id')) as { agent_id: string; trust_level: string | null }[];
    expect(rows.map((row) => row.trust_level)).to.deep.equal(['emulated-tpm', null, null]);
    for (const id of Object.keys(levels)) await call('DELETE', `/v2.6/agents/${id}`);
  });
});

describe('verifier over TLS', function () {
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let verifier: RunningVerifier;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-tls-'));
    schema = await createTestSchema();
    verifier = await startVerifier({ dataDir: dir, port: 0, databaseUrl: schema.url });
  });

  after(async function () {
    await verifier?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('public routes need no client certificate; admin routes need one from the verifier CA', async function () {
    const tenant = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' });
    expect((await rawRequest(verifier.url, 'GET', '/version', undefined, { ca: verifier.caCert })).status).to.equal(200);
    const anonymous = await rawRequest(verifier.url, 'GET', '/v2.6/agents', undefined, { ca: verifier.caCert });
    expect(anonymous.status).to.equal(403);
    expect(anonymous.body.status).to.equal('client certificate required');
    const foreign = tlsFixture().foreignClient;
    const refused = await rawRequest(verifier.url, 'GET', '/v2.6/agents', undefined, { ca: verifier.caCert, cert: foreign.certPem, key: foreign.keyPem });
    expect(refused.status).to.equal(403);
    expect(refused.body.status).to.equal('client certificate not issued by the CA this service trusts (the ca/cacert.crt of its --data-dir)');
    const admin = await rawRequest(verifier.url, 'GET', '/v2.6/agents', undefined, { ca: verifier.caCert, cert: tenant.cert, key: tenant.key });
    expect(admin.status).to.equal(200);
    expect(admin.body.results).to.deep.equal({ uuids: [] });
    const evidence = await rawRequest(verifier.url, 'POST', '/v2.6/verify/evidence', { type: 'tpm' }, { ca: verifier.caCert });
    expect(evidence.status).to.equal(400);
  });
});
