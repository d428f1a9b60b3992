import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { judgeVerifierStatus, type StatusVerdict } from '../../lib/attestation/operator-decision.js';
import { waitForFinalVerdict } from '../../drivers/keylime/status-wait.js';
import { readVerifierAgent } from '../../drivers/keylime/verifier-agent-view.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { createTestSchema, eventually } from '../verifier/helpers/verifier-fixture.js';
import { serveFakeAgents } from '../verifier/helpers/fake-agent-server.js';

const STALE_AFTER = 2;

/**
 * The driver against a real verifier (over mTLS) whose agent goes silent: the verifier keeps retrying
 * it for a long budget (state Get Quote Retry — Keylime's status would say PASS all that time), but
 * the driver's verdict is no longer `pass` once the last success is older than the bound, and a wait
 * for a final verdict ends in AttestationServiceUnavailable, never in trust.
 */
describe('keylime driver: a silent agent is not trusted past the freshness bound', function () {
  this.timeout(90_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let verifier: RunningVerifier;
  let client: VerifierClient;
  let server: Server;
  const fake = new FakeAgent();
  const agentId = 'silent-agent';

  const verdict = async (): Promise<StatusVerdict> => {
    const view = await readVerifierAgent(client, agentId);
    return view === undefined ? { kind: 'fail', reasons: ['gone'], eventIds: [] } : judgeVerifierStatus(view);
  };

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-stale-pass-'));
    schema = await createTestSchema();
    const agents = await serveFakeAgents(fake, 0x400);
    server = agents.server;
    const { port } = agents;
    const tls = { certPem: agents.certPem };
    // A long retry budget (10 × 2 s): without the bound the agent would look fine for 20 s.
    verifier = await startVerifier({
      dataDir: dir,
      port: 0,
      databaseUrl: schema.url,
      quoteInterval: 0.5,
      retryInterval: 2,
      maxRetries: 10,
      exponentialBackoff: false,
      staleAfter: STALE_AFTER,
    });
    const tenantTls = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'tenant' });
    client = new VerifierClient({ baseUrl: verifier.url, tls: tenantTls, apiVersion: '2.6' });
    await client.addAgent(agentId, {
      v: null,
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: port,
      tpm_policy: '{"mask": "0x400"}',
      runtime_policy: '',
      mb_policy: null,
      mb_policy_name: '',
      ima_sign_verification_keys: '',
      metadata: '{}',
      revocation_key: '',
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa'],
      accept_tpm_signing_algs: ['rsassa'],
      ak_tpm: fake.akTpm,
      mtls_cert: tls.certPem,
      supported_version: '2.2',
    });
  });

  after(async function () {
    client?.close();
    await verifier?.close();
    server?.close();
    await schema?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes while the agent answers, then is pending within the bound once it is silent, and never final-trusted', async function () {
    await eventually('a fresh pass', async () => (await verdict()).kind === 'pass', 20_000);
    server.close();
    server.closeAllConnections();
    const silentAt = Date.now();
    // When the last question answered `pass` was asked: on a slow host a question can take seconds to
    // answer, so the time the answers arrive would measure the host, not the bound.
    let lastPassAskedAt = silentAt;
    await eventually('the verdict to leave pass', async () => {
      const askedAt = Date.now();
      if ((await verdict()).kind !== 'pass') return true;
      lastPassAskedAt = askedAt;
      return false;
    }, 30_000, 100);
    // No pass for a question asked past the bound (plus one second of whole-second timestamps and one round's lateness).
    expect(lastPassAskedAt - silentAt).to.be.below((STALE_AFTER + 2.5) * 1000);
    expect((await verdict()).kind).to.equal('pending');
    // The verifier is still retrying: Keylime's rule alone would call this PASS; ours says stale.
    await eventually('the verifier to call the PASS stale', async () => ((await client.rawStatus(agentId)) as { stale?: boolean }).stale === true, 5000, 100);
    const raw = (await client.rawStatus(agentId)) as Record<string, unknown>;
    expect(raw['operational_state']).to.equal(OperationalState.GET_QUOTE_RETRY);
    expect(raw).to.include({ trusted: false, stale: true, attestation_status: 'PENDING', freshness_bound: STALE_AFTER });

    const controller = new AbortController();
    const error = await waitForFinalVerdict(verdict, {
      timeoutMs: 2000,
      intervalMs: 200,
      signal: controller.signal,
      isTransient: () => false,
    }).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
  });
});
