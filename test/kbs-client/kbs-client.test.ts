import { expect } from 'chai';
import { decodeJwt } from 'jose';
import { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import type { EvidenceProvider } from '../../lib/kbs-client/evidence-provider.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { InvalidConfig } from '../../interfaces/errors.js';
import { softwareTestNode, startTestBroker, type TestBroker, type TestNode } from '../broker/helpers/broker-fixture.js';

/** Counts how often the client asked for evidence, i.e. how many RCAR exchanges it ran. */
class CountingProvider implements EvidenceProvider {
  readonly tee: string;
  calls = 0;

  constructor(private readonly inner: EvidenceProvider) {
    this.tee = inner.tee;
  }

  primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>> {
    this.calls += 1;
    return this.inner.primaryEvidence(reportData);
  }
}

/** The tee-pubkey an EAR token was issued for. */
function teePubkeyOf(token: string): unknown {
  const submods = decodeJwt(token)['submods'] as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
  return submods['cpu0']?.['ear.veraison.annotated-evidence']?.['runtime_data_claims']?.['tee-pubkey'];
}

describe('kbs client: token cache and renewal', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let http: KbsHttp;

  before(async function () {
    broker = await startTestBroker({ tokenLifetimeSeconds: 120 });
    node = await softwareTestNode();
    await broker.admin.putNode(node.agentId, { akTpm: node.akTpm });
    await broker.admin.putResource({ repository: 'r', type: 't', tag: 'a' }, new Uint8Array([1]), { agents: [node.agentId] });
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
  });

  after(async function () {
    await http?.close();
    await node?.dispose();
    await broker?.dispose();
  });

  function client(mode: 'background' | 'passport', now: () => number): { client: KbsClient; evidence: CountingProvider } {
    const evidence = new CountingProvider(new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath }));
    return { client: new KbsClient({ broker: http, evidence, mode, now }), evidence };
  }

  for (const mode of ['background', 'passport'] as const) {
    it(`${mode}: attests once, reuses the credential, renews it near expiry`, async function () {
      let now = Date.now();
      const { client: kbs, evidence } = client(mode, () => now);
      await kbs.getResource('kbs:///r/t/a');
      await kbs.getResource('kbs:///r/t/a');
      expect(evidence.calls).to.equal(1);
      now += 100_000; // within 30 s of the 120 s token's expiry
      await kbs.getResource('kbs:///r/t/a');
      expect(evidence.calls).to.equal(2);
    });
  }

  it('attests again when the broker refuses a cached credential (session withdrawn)', async function () {
    const { client: kbs, evidence } = client('background', Date.now);
    await kbs.getResource('kbs:///r/t/a');
    await broker.admin.revoke(node.agentId, 'test');
    await broker.admin.reinstate(node.agentId);
    expect(Array.from(await kbs.getResource('kbs:///r/t/a'))).to.deep.equal([1]);
    expect(evidence.calls).to.equal(2);
  });

  it('keeps one tee key pair for the client\'s life, as guest-components does: a new attestation binds the same key', async function () {
    const { client: kbs, evidence } = client('background', Date.now);
    const first = teePubkeyOf(await kbs.token());
    kbs.invalidate();
    const second = teePubkeyOf(await kbs.token());
    expect(evidence.calls).to.equal(2);
    expect(second).to.deep.equal(first);
    expect(Array.from(await kbs.getResource('kbs:///r/t/a')), 'the answer opens with the kept key').to.deep.equal([1]);
    const { client: another } = client('background', Date.now);
    expect(teePubkeyOf(await another.token()), 'another client, another key').to.not.deep.equal(first);
  });

  it('concurrent first attestations of one client bind the same key', async function () {
    const { client: kbs, evidence } = client('background', Date.now);
    const tokens = await Promise.all([kbs.token(), kbs.token(), kbs.token()]);
    expect(evidence.calls, 'each call attested').to.equal(3);
    const [first, ...others] = tokens.map(teePubkeyOf);
    for (const other of others) expect(other).to.deep.equal(first);
  });

  it('the builder refuses plain HTTP and a missing evidence provider', function () {
    expect(() => new KbsClientBuilder('https://x').build()).to.throw(InvalidConfig);
    const provider = new TpmEvidenceProvider({ tpm: node.tpm, agentId: 'a' });
    expect(() => new KbsClientBuilder('http://x').evidenceProvider(provider).build()).to.throw(InvalidConfig);
  });
});
