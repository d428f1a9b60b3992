import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { AGENT_API_CONTEXT } from '../../lib/agent/agent-tokens.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { loadOrCreateBrokerKeys } from '../../lib/broker/broker-keys.js';
import { EarTokenIssuer } from '../../lib/broker/ear-token.js';
import { KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { createDeployment, digestOf, eventually, policyForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';
import type { BrokerConfigInput } from '../../lib/broker/broker-server.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const ISSUER = 'standing-test';

/**
 * The broker beside a running verifier: the good-standing rule (`verifier_standing`) asks the verifier
 * for the agent right now and compares its AK; the verifier announces a failed agent to the broker as
 * an HTTPS webhook checked against the broker's CA (`revocationWebhookCa`), and the broker withdraws it.
 * Registrar, verifier and agents are real (software TPM, PostgreSQL). The tokens are signed with the
 * broker's own issuer key, as its `/attest` hands them out, so the rules under test are isolated from
 * evidence appraisal (covered by broker-background and broker.swtpm).
 */
describe('broker with a verifier: good standing and revocation webhook over TLS', function () {
  this.timeout(120_000);
  const revocation = newRsaKeyPairSync();
  const revocationPrivatePem = revocation.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const secret = new Uint8Array(randomBytes(32));
  const disposables: { dispose(): Promise<void> }[] = [];
  let deployment: Deployment;

  before(async function () {
    deployment = await createDeployment();
  });

  after(async function () {
    for (const item of disposables.reverse()) {
      await item.dispose().catch(() => undefined);
    }
    await deployment?.dispose();
  });

  /** A test broker with a client that fetches with tokens of the broker's own issuer (what its /attest would hand out for a node quoting with `akTpm`). */
  async function brokerWithTokens(config: Partial<BrokerConfigInput>): Promise<{ broker: TestBroker; fetch(agentId: string, tag: string, akTpm: string): Promise<Uint8Array> }> {
    const broker = await startTestBroker({ issuer: ISSUER, ...config });
    const http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    disposables.push(broker, { dispose: () => http.close() });
    const keys = await loadOrCreateBrokerKeys(broker.dataDir, ISSUER);
    const issuer = new EarTokenIssuer({ issuer: ISSUER, lifetimeSeconds: 300, privateKey: keys.tokenPrivateKey, publicKey: keys.tokenPublicKey });
    return {
      broker,
      async fetch(agentId, tag, akTpm) {
        const key = await TeeKeyPair.generate('ec');
        const token = await issuer.issue({
          agentId,
          akTpm,
          teePubkey: key.publicJwk,
          vector: { 'instance-identity': 2, configuration: 0, executables: 0, hardware: 2 },
          pcrs: {},
          reportData: '',
          now: Math.floor(Date.now() / 1000),
        });
        const reply = await http.send('GET', `/kbs/v0/resource/node/disk-key/${tag}`, { headers: { authorization: `Bearer ${token}` } });
        return key.decrypt(reply.body as Parameters<TeeKeyPair['decrypt']>[0]);
      },
    };
  }

  function pemFile(name: string, pem: string): string {
    const file = path.join(deployment.root, name);
    writeFileSync(file, pem, { mode: 0o600 });
    return file;
  }

  it('good standing: released only while the verifier trusts the node now, by the same AK; fails closed without a verifier', async function () {
    const verifier = await deployment.startVerifier();
    const tenant = deployment.tenant();
    const agent = await deployment.startAgent('standing');
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    const otherTpm = await createSoftwareTpm();
    await otherTpm.ensureEk();
    const otherAk = Buffer.from((await otherTpm.ensureAk('sha256')).akPublic).toString('base64');
    await otherTpm.close();
    const stranger = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';

    const verifierTls = {
      verifierCa: deployment.caFile,
      verifierCert: pemFile('tenant-cert.pem', deployment.tenantTls.cert),
      verifierKey: pemFile('tenant-key.pem', deployment.tenantTls.key),
    };
    const live = await brokerWithTokens({ verifierUrl: verifier.url, ...verifierTls });
    const dead = await brokerWithTokens({ verifierUrl: 'https://127.0.0.1:1', ...verifierTls });
    const none = await brokerWithTokens({});
    for (const { broker } of [live, dead, none]) {
      await broker.admin.putNode(agent.uuid, { akTpm: akOf(agent) });
      await broker.admin.putNode(stranger, { akTpm: otherAk });
      await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'standing' }, secret, { agents: [agent.uuid, stranger], verifier_standing: true });
      await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'plain' }, secret, { agents: [agent.uuid] });
    }

    expect(await live.fetch(agent.uuid, 'standing', akOf(agent))).to.deep.equal(secret);
    const unavailable = await dead.fetch(agent.uuid, 'standing', akOf(agent)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(unavailable, 'an unreachable verifier: an outage to wait out, nothing released').to.be.instanceOf(KbsRefusedError);
    expect([(unavailable as KbsRefusedError).remoteHttpStatus, (unavailable as KbsRefusedError).kbsType]).to.deep.equal([503, 'VerifierUnavailable']);
    await expectDenied(none.fetch(agent.uuid, 'standing', akOf(agent)), 'no verifier configured');
    expect(await none.fetch(agent.uuid, 'plain', akOf(agent)), 'resources without the rule need no verifier').to.deep.equal(secret);
    await expectDenied(live.fetch(stranger, 'standing', otherAk), 'does not attest this node');

    await live.broker.admin.putNode(agent.uuid, { akTpm: otherAk });
    await expectDenied(live.fetch(agent.uuid, 'standing', otherAk), 'another AK');
    await live.broker.admin.putNode(agent.uuid, { akTpm: akOf(agent) });
    expect(await live.fetch(agent.uuid, 'standing', akOf(agent))).to.deep.equal(secret);

    await agent.appendIma('/usr/bin/evil', digestOf('evil'));
    await tenant.waitForState(agent.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    await expectDenied(live.fetch(agent.uuid, 'standing', akOf(agent)), 'does not trust this node right now');
    expect(await live.fetch(agent.uuid, 'plain', akOf(agent)), 'no webhook here: only the rule refuses').to.deep.equal(secret);
    await verifier.close();
    deployment.verifier = undefined;
  });

  it('revocation webhook over HTTPS to the broker (checked against its CA): the failed node\'s tokens stop at once', async function () {
    const target = await brokerWithTokens({ revocationCert: pemFile('revocation.pem', revocation.publicKey.export({ type: 'spki', format: 'pem' }).toString()) });
    await deployment.startVerifier({
      revocationWebhooks: [`${target.broker.running.url}/kbs/v0/revocation`],
      revocationWebhookCa: path.join(target.broker.dataDir, 'ca', 'cacert.crt'),
    });
    const tenant = deployment.tenant();
    const agent = await deployment.startAgent('revoked');
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent), revocationKey: revocationPrivatePem });
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 15_000 });
    await target.broker.admin.putNode(agent.uuid, { akTpm: akOf(agent) });
    await target.broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'plain' }, secret, { agents: [agent.uuid] });
    expect(await target.fetch(agent.uuid, 'plain', akOf(agent))).to.deep.equal(secret);

    await agent.appendIma('/usr/bin/evil', digestOf('evil'));
    await tenant.waitForState(agent.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    await eventually('the broker to withdraw the failed node', async () => {
      try {
        await target.fetch(agent.uuid, 'plain', akOf(agent));
        return false;
      } catch (error) {
        return error instanceof KbsRefusedError && error.kbsType === 'TokenVerifierError' && (error.detail ?? '').includes('revoked');
      }
    });
  });
});

function akOf(agent: RunningAgent): string {
  return Buffer.from(agent.container.resolve(AGENT_API_CONTEXT).ak.akPublic).toString('base64');
}

async function expectDenied(promise: Promise<unknown>, detail: string): Promise<void> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof KbsRefusedError)) {
      throw error;
    }
    expect([error.remoteHttpStatus, error.kbsType], detail).to.deep.equal([403, 'PolicyDeny']);
    expect(error.detail, detail).to.contain(detail);
    return;
  }
  throw new Error(`expected a refusal (${detail})`);
}
