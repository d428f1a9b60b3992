import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { InjectOptions } from 'fastify';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { marshalTpm2bPublic, type RsaPublicArea } from '../../lib/tpm/tpmt-public.js';
import { rocaModulus } from '../helpers/roca-modulus.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

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

/**
 * Issue 11, items 2 (enrolment side) and 8: what Keylime's tenant sends that ironlime's verifier must
 * take, and the one enrolment it must refuse although Keylime takes it.
 */
describe('verifier enrolment and listing, as Keylime tenants send them', function () {
  let dir: string;
  let db: OpenedDatabase;
  let verifier: RunningVerifier;
  let mtlsCert: string;
  const fake = new FakeAgent();

  async function call(method: InjectOptions['method'], url: string, payload?: unknown): Promise<Reply> {
    const response = await verifier.service.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }) });
    return { status: response.statusCode, body: response.body === '' ? ({} as Reply['body']) : (JSON.parse(response.body) as Reply['body']) };
  }

  /** A Keylime-tenant enrolment body; the agent address is closed, so the loop only retries. */
  function enrolment(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      v: null,
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: 1,
      tpm_policy: JSON.stringify({ mask: '0x400' }),
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
      mtls_cert: mtlsCert,
      supported_version: '2.6',
      ...overrides,
    };
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-enrolment-interop-'));
    db = await openTestSchema();
    verifier = await startVerifier({ dataDir: dir, quoteInterval: 0.5, retryInterval: 3600, maxRetries: 100 }, { database: db.database, inProcessForTests: true });
    mtlsCert = (await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' })).cert;
  });

  after(async function () {
    await verifier?.close();
    await db?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a runtime policy whose PCR mask leaves out PCR 10, naming the reason, and stores nothing', async function () {
    const cases: [string, Record<string, unknown>][] = [
      ['a new policy, no mask', { tpm_policy: JSON.stringify({ '15': ['00'.repeat(32)] }) }],
      ['a new policy, mask without bit 10', { tpm_policy: JSON.stringify({ '15': ['00'.repeat(32)], mask: '0x8000' }) }],
      ['a flat allowlist', { runtime_policy: b64(`${'a'.repeat(64)}  /usr/bin/bash\n`), tpm_policy: '{}' }],
    ];
    for (const [what, overrides] of cases) {
      const id = `no-pcr10-${cases.findIndex(([w]) => w === what)}`;
      const reply = await call('POST', `/v2.6/agents/${id}`, enrolment(overrides));
      expect(reply.status, what).to.equal(400);
      expect(reply.body.status, what).to.equal(
        'body.tpm_policy.mask: must include PCR 10 (0x400) when a runtime policy is given: without PCR 10 in the quote the IMA list cannot be checked',
      );
      expect((await call('GET', `/v2.6/agents/${id}`)).status, `${what}: nothing stored`).to.equal(404);
    }
    expect((await call('POST', '/v2.6/allowlists/stored', { runtime_policy: b64(POLICY) })).status).to.equal(201);
    const byName = await call('POST', '/v2.6/agents/no-pcr10-by-name', enrolment({ runtime_policy: '', runtime_policy_name: 'stored', tpm_policy: '{"mask": "0x0"}' }));
    expect(byName.status).to.equal(400);
    expect(byName.body.status).to.match(/^body\.tpm_policy\.mask: must include PCR 10/);
  });

  it('refuses IMA signature keys whose PCR mask leaves out PCR 10 (the verifier would fail every round), and stores nothing', async function () {
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const keys = JSON.stringify({ meta: { version: 1 }, keyids: [], pubkeys: [der.toString('base64')] });
    const reply = await call('POST', '/v2.6/agents/no-pcr10-keys', enrolment({ runtime_policy: '', ima_sign_verification_keys: keys, tpm_policy: '{"mask": "0x0"}' }));
    expect(reply.status).to.equal(400);
    expect(reply.body.status).to.equal(
      'body.tpm_policy.mask: must include PCR 10 (0x400) when IMA signature keys are given: without PCR 10 in the quote the IMA list cannot be checked',
    );
    expect((await call('GET', '/v2.6/agents/no-pcr10-keys')).status).to.equal(404);
  });

  it('refuses an RSA AK with the ROCA fingerprint or under 2048 bits (padded to 256 bytes too), which a Keylime registrar and tenant pass on, and stores nothing', async function () {
    const short = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }).n as string, 'base64url');
    const cases: [string, Uint8Array, RegExp][] = [
      ['roca', rocaModulus(), /^TPM key: the AK is an RSA key made by a TPM with the ROCA flaw \(CVE-2017-15361/],
      ['short', new Uint8Array(short), /^TPM key: the AK is a 1024-bit RSA key/],
      ['padded', new Uint8Array(Buffer.concat([Buffer.alloc(128), short])), /^TPM key: the AK is a 1024-bit RSA key/],
    ];
    const rsa = fake.akPublic as RsaPublicArea;
    for (const [what, n, refusal] of cases) {
      const area: RsaPublicArea = { ...rsa, parameters: { ...rsa.parameters, keyBits: n.length * 8 }, unique: { n } };
      const akTpm = Buffer.from(marshalTpm2bPublic(area)).toString('base64');
      const reply = await call('POST', `/v2.6/agents/weak-ak-${what}`, enrolment({ ak_tpm: akTpm }));
      expect(reply.status, what).to.equal(400);
      expect(reply.body.status, what).to.match(refusal);
      expect((await call('GET', `/v2.6/agents/weak-ak-${what}`)).status, `${what}: nothing stored`).to.equal(404);
    }
  });

  it('accepts the same enrolments with PCR 10, and one without a runtime policy and without PCR 10', async function () {
    expect((await call('POST', '/v2.6/agents/with-pcr10', enrolment())).status).to.equal(200);
    expect((await call('POST', '/v2.6/agents/without-policy', enrolment({ runtime_policy: '', tpm_policy: JSON.stringify({ '15': ['00'.repeat(32)] }) }))).status).to.equal(200);
  });

  it('GET /v2.x/agents/?verifier= (empty, as keylime_tenant -c cvlist sends it) lists every agent', async function () {
    const all = await call('GET', '/v2.6/agents/?verifier=');
    expect(all.status).to.equal(200);
    expect(all.body.results['uuids']).to.include.members(['with-pcr10', 'without-policy']);
    expect((await call('GET', '/v2.5/agents?verifier=')).body.results).to.deep.equal(all.body.results);
    expect((await call('GET', '/v2.6/agents/?verifier=default')).body.results).to.deep.equal(all.body.results);
    expect((await call('GET', '/v2.6/agents/?verifier=elsewhere')).body.results).to.deep.equal({ uuids: [] });
    const bulk = (await call('GET', '/v2.6/agents/?verifier=&bulk=')).body.results;
    expect(Object.keys(bulk)).to.include.members(['with-pcr10', 'without-policy']);
    expect((await call('GET', '/v2.6/agents/?verifier=bad%20id')).status).to.equal(400);
  });
});
