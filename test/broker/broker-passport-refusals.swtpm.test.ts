import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import type { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { DEFAULT_QUOTED_PCRS, TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { startTestSwtpm, type SwtpmFixture } from '../tpm-access/tpm-test-helpers.js';
import { bootTestNode, brokerReportData, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { attest, expectRefused, openSession, runtimeDataOf } from './helpers/kbs-refusals.js';

const DISK_KEY = { repository: 'node', type: 'disk-key', tag: 'passport-refusals' };
const DISK_KEY_URI = 'kbs:///node/disk-key/passport-refusals';
/**
 * A "plain" PCR: outside the range the measured-boot check replays (0-9, 11-15), pinned by the node's
 * tpm_policy only, and quoted on top of the default PCRs.
 */
const PLAIN_PCR = 23;
const QUOTED_PCRS = [...DEFAULT_QUOTED_PCRS, PLAIN_PCR];

/**
 * Refusals with their exact HTTP status and KBS error type on a real swtpm node. Issuer A appraises
 * evidence (background check) and issues EAR tokens; broker B trusts A's JWKS and releases against
 * tokens alone (passport). Each tamper is checked in both models, then the node's registration at A is
 * brought up to date so the next case fails for its own reason only.
 */
describe('broker refusals on a swtpm node: passport issuer and background check (status and type)', function () {
  this.timeout(180_000);
  let swtpm: SwtpmFixture;
  let node: TestNode;
  let issuerA: TestBroker;
  let brokerB: TestBroker;
  let http: KbsHttp;
  const closers: (() => Promise<void>)[] = [];
  const secret = new Uint8Array(randomBytes(32));

  function evidenceOf(of: TestNode): TpmEvidenceProvider {
    return new TpmEvidenceProvider({
      tpm: of.tpm,
      agentId: node.agentId,
      pcrs: QUOTED_PCRS,
      imaLogPath: of.emulated.imaLogPath,
      bootLogPath: of.emulated.bootLogPath,
    });
  }

  function client(passport: boolean, of: TestNode = node): KbsClient {
    const builder = new KbsClientBuilder((passport ? brokerB : issuerA).running.url)
      .ca((passport ? brokerB : issuerA).running.caCert)
      .evidenceProvider(evidenceOf(of));
    if (passport) {
      builder.mode('passport').issuer(issuerA.running.url, issuerA.running.caCert);
    }
    const built = builder.build();
    closers.push(() => built.close());
    return built.client;
  }

  /** Registers the node at A with its current IMA log, boot log and PLAIN_PCR value as the good state. */
  async function registerAtIssuer(): Promise<void> {
    const pcrs = await node.tpm.readPcrs('sha256', [PLAIN_PCR]);
    const plain = Buffer.from(pcrs.get(PLAIN_PCR) as Uint8Array).toString('hex');
    await issuerA.admin.putNode(node.agentId, {
      akTpm: node.akTpm,
      runtimePolicy: await node.runtimePolicy(),
      mbRefstate: await node.refstate(),
      tpmPolicy: JSON.stringify({ [String(PLAIN_PCR)]: [plain] }),
    });
  }

  /** Both models refuse the node at A's /attest (401 AttestationError); resolves to [background, passport] details. */
  async function refusedInBothModels(): Promise<[string, string]> {
    const background = await expectRefused(client(false).getResource(DISK_KEY_URI), 401, 'AttestationError', 'background');
    const passportClient = client(true);
    const passport = await expectRefused(passportClient.token(), 401, 'AttestationError', 'passport token');
    await expectRefused(passportClient.getResource(DISK_KEY_URI), 401, 'AttestationError', 'passport fetch');
    return [background, passport];
  }

  async function goodInBothModels(): Promise<void> {
    expect(await client(false).getResource(DISK_KEY_URI), 'background').to.deep.equal(secret);
    expect(await client(true).getResource(DISK_KEY_URI), 'passport').to.deep.equal(secret);
  }

  before(async function () {
    swtpm = await startTestSwtpm();
    node = await bootTestNode(await openTpm2ToolsTpm({ tcti: swtpm.swtpm.tcti }), { tcti: swtpm.swtpm.tcti });
    issuerA = await startTestBroker({ issuer: 'issuer-a' });
    brokerB = await startTestBroker({ issuer: 'broker-b', trustIssuers: [issuerA.running.jwksPath] });
    http = new KbsHttp({ url: issuerA.running.url, ca: issuerA.running.caCert });
    await registerAtIssuer();
    await brokerB.admin.putNode(node.agentId, { groups: ['rack7'] });
    for (const broker of [issuerA, brokerB]) {
      await broker.admin.putResource(DISK_KEY, secret, { agents: [node.agentId] });
    }
  });

  after(async function () {
    for (const close of closers) {
      await close();
    }
    await http?.close();
    await brokerB?.dispose();
    await issuerA?.dispose();
    await node?.dispose();
    await swtpm?.cleanup();
  });

  it('the good node gets its disk key in both models (control)', async function () {
    await goodInBothModels();
  });

  it('issuer /attest: a quote over another nonce is 401 AttestationError, and the session stays unattested', async function () {
    const session = await openSession(http);
    const wrongNonce = runtimeDataOf(randomBytes(32).toString('base64'), await TeeKeyPair.generate('ec'));
    const evidence = await evidenceOf(node).primaryEvidence(brokerReportData(wrongNonce));
    const detail = await expectRefused(attest(http, session.cookie, wrongNonce, evidence), 401, 'AttestationError', 'wrong nonce');
    expect(detail, detail).to.contain('nonce');
    await expectRefused(
      http.send('GET', `/kbs/v0/resource/${DISK_KEY.repository}/${DISK_KEY.type}/${DISK_KEY.tag}`, { headers: { cookie: session.cookie } }),
      401,
      'TokenVerifierError',
      'fetch in the refused session',
    );
  });

  it('issuer /attest: a quote replayed from an earlier session is 401 AttestationError', async function () {
    const key = await TeeKeyPair.generate('ec');
    const earlier = await openSession(http);
    const earlierData = runtimeDataOf(earlier.nonce, key);
    const evidence = await evidenceOf(node).primaryEvidence(brokerReportData(earlierData));
    expect(await attest(http, earlier.cookie, earlierData, evidence)).to.be.a('string');
    const later = await openSession(http);
    const detail = await expectRefused(attest(http, later.cookie, runtimeDataOf(later.nonce, key), evidence), 401, 'AttestationError', 'replay');
    expect(detail, detail).to.contain('qoute_validation.quote_validation');
  });

  it("issuer /attest: another TPM's quote sent under this node's agent id is 401 AttestationError", async function () {
    const other = await softwareTestNode(node.agentId);
    try {
      const session = await openSession(http);
      const runtimeData = runtimeDataOf(session.nonce, await TeeKeyPair.generate('ec'));
      const evidence = await evidenceOf(other).primaryEvidence(brokerReportData(runtimeData));
      const detail = await expectRefused(attest(http, session.cookie, runtimeData, evidence), 401, 'AttestationError', 'other TPM');
      expect(detail, detail).to.contain('qoute_validation.quote_validation');
      const passport = await expectRefused(client(true, other).getResource(DISK_KEY_URI), 401, 'AttestationError', 'other TPM, passport');
      expect(passport).to.contain('qoute_validation.quote_validation');
    } finally {
      await other.dispose();
    }
  });

  it(`a plain PCR mismatch (PCR ${PLAIN_PCR} outside tpm_policy) is 401 AttestationError, reported as pcr_validation, not measured boot`, async function () {
    await node.tpm.extendPcr(PLAIN_PCR, 'sha256', new Uint8Array(randomBytes(32)));
    for (const detail of await refusedInBothModels()) {
      expect(detail, detail).to.contain(`pcr_validation.invalid_pcr_${PLAIN_PCR}`);
      expect(detail, detail).to.not.contain('measured_boot');
      expect(detail, detail).to.not.contain('ima.');
    }
    await registerAtIssuer();
    await goodInBothModels();
  });

  it('IMA tamper (an unknown binary ran) is 401 AttestationError in both models, reported as ima, not measured boot', async function () {
    await node.emulated.measure([{ path: '/usr/bin/implant', content: new Uint8Array(Buffer.from('implant')) }]);
    for (const detail of await refusedInBothModels()) {
      expect(detail, detail).to.match(/ima\./);
      expect(detail, detail).to.not.contain('measured_boot');
      expect(detail, detail).to.not.contain('pcr_validation');
    }
    await registerAtIssuer();
    await goodInBothModels();
  });

  it('measured-boot tamper (PCR 4 extended outside the boot log): no token and no key, reported as measured_boot.invalid_pcr_4', async function () {
    await node.tpm.extendPcr(4, 'sha256', new Uint8Array(randomBytes(32)));
    for (const detail of await refusedInBothModels()) {
      expect(detail, detail).to.contain('measured_boot.invalid_pcr_4');
      expect(detail, detail).to.not.contain('pcr_validation');
      expect(detail, detail).to.not.contain('ima.');
    }
  });
});
