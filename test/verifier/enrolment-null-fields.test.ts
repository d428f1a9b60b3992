import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { InjectOptions } from 'fastify';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
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
 * JSON null in the optional enrolment fields. Keylime's tenants send some as null when they are unset
 * (keylimectl: `runtime_policy_name` and `mb_policy_name`; keylime_tenant: `runtime_policy_key`), so null
 * there is "none", as in Keylime; the form check passed them but the enrolment check read them as text
 * (a 500, or a stored policy named null looked up). A pull agent's `mtls_cert: null` is "no certificate":
 * refused as absent, not stored for a loop that can never poll it.
 */
describe('verifier enrolment: null in optional fields', function () {
  let dir: string;
  let db: OpenedDatabase;
  let verifier: RunningVerifier;
  let mtlsCert: string;
  const fake = new FakeAgent();

  async function call(method: InjectOptions['method'], url: string, payload?: unknown): Promise<Reply> {
    const response = await verifier.service.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }) });
    return { status: response.statusCode, body: response.body === '' ? ({} as Reply['body']) : (JSON.parse(response.body) as Reply['body']) };
  }

  /** An enrolment with PCR 10 in the mask; the agent address is closed, so the loop only retries. */
  function enrolment(overrides: Record<string, unknown>): Record<string, unknown> {
    return {
      v: null,
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: 1,
      tpm_policy: JSON.stringify({ mask: '0x400' }),
      runtime_policy: '',
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa'],
      accept_tpm_signing_algs: ['rsassa'],
      ak_tpm: fake.akTpm,
      mtls_cert: mtlsCert,
      supported_version: '2.6',
      ...overrides,
    };
  }

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-enrolment-nulls-'));
    db = await openTestSchema();
    verifier = await startVerifier({ dataDir: dir, quoteInterval: 0.5, retryInterval: 3600, maxRetries: 100 }, { database: db.database, inProcessForTests: true });
    mtlsCert = (await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' })).cert;
  });

  after(async function () {
    await verifier?.close();
    await db?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes null policy names (keylimectl) as no policy', async function () {
    const reply = await call('POST', '/v2.6/agents/null-names', enrolment({ runtime_policy_name: null, mb_policy_name: null, mb_policy: null }));
    expect([reply.status, reply.body.status]).to.deep.equal([200, 'Success']);
    const shown = await call('GET', '/v2.6/agents/null-names');
    expect(shown.body.results['runtime_policy_name'] ?? null).to.equal(null);
    expect(shown.body.results['mb_policy_name'] ?? null).to.equal(null);
  });

  it('takes a null runtime_policy_key (keylime_tenant without a signing key) as none, at enrolment and on /allowlists', async function () {
    const reply = await call('POST', '/v2.6/agents/null-key', enrolment({ runtime_policy: b64(POLICY), runtime_policy_key: null }));
    expect([reply.status, reply.body.status]).to.deep.equal([200, 'Success']);
    const stored = await call('POST', '/v2.6/allowlists/null-key-policy', { runtime_policy: b64(POLICY), runtime_policy_key: null });
    expect(stored.status).to.equal(201);
  });

  it('takes null IMA keys, metadata and revocation key as none', async function () {
    const reply = await call('POST', '/v2.6/agents/null-texts', enrolment({ ima_sign_verification_keys: null, metadata: null, revocation_key: null }));
    expect([reply.status, reply.body.status]).to.deep.equal([200, 'Success']);
  });

  it("refuses a pull agent's null mtls_cert as a missing one, and stores nothing", async function () {
    const reply = await call('POST', '/v2.6/agents/null-cert', enrolment({ mtls_cert: null }));
    expect([reply.status, reply.body.status]).to.deep.equal([400, 'body.mtls_cert: mTLS certificate for agent is required!']);
    expect((await call('GET', '/v2.6/agents/null-cert')).status).to.equal(404);
  });
});
