import { expect } from 'chai';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { TeeKeyPair } from '../../lib/kbs-client/tee-key-pair.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { brokerReportData, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/**
 * A cookie session is bound to the AK it attested with, as a token is: once the node is enrolled
 * again with another AK, the session releases nothing more (PostgreSQL, software TPM, real quotes).
 */
describe('broker: a cookie session is bound to the AK it attested with', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let http: KbsHttp;
  const resourcePath = '/kbs/v0/resource/node/join/rack7';

  const enrol = async (akTpm: string): Promise<void> =>
    broker.admin.putNode(node.agentId, { akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate(), groups: ['rack7'] });

  /** The cookie of a session that attested with the node's TPM. */
  async function attestedCookie(): Promise<string> {
    const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
    const cookie = String(auth.headers['set-cookie']).split(';')[0] as string;
    const key = await TeeKeyPair.generate('ec');
    const runtimeData = { nonce: (auth.body as { nonce: string }).nonce, 'tee-pubkey': key.publicJwk };
    const evidence = await new TpmEvidenceProvider({
      tpm: node.tpm,
      agentId: node.agentId,
      imaLogPath: node.emulated.imaLogPath,
      bootLogPath: node.emulated.bootLogPath,
    }).primaryEvidence(brokerReportData(runtimeData));
    await http.send('POST', '/kbs/v0/attest', { body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } }, headers: { cookie } });
    return cookie;
  }

  before(async function () {
    broker = await startTestBroker();
    node = await softwareTestNode();
    await enrol(node.akTpm);
    await broker.admin.putResource({ repository: 'node', type: 'join', tag: 'rack7' }, new Uint8Array([7]), { groups: ['rack7'] });
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
  });

  after(async function () {
    await http?.close();
    await node?.dispose();
    await broker?.dispose();
  });

  it('refuses the session while the node is enrolled with another AK, and serves it again once its AK is back', async function () {
    const cookie = await attestedCookie();
    const fetch = (): Promise<unknown> => http.send('GET', resourcePath, { headers: { cookie } });
    expect(await fetch()).to.have.property('body');
    const otherTpm = await createSoftwareTpm();
    try {
      await enrol(Buffer.from((await otherTpm.ensureAk('sha256')).akPublic).toString('base64'));
      const error = await refusal(fetch());
      expect([error.remoteHttpStatus, error.kbsType, error.detail]).to.deep.equal([
        401,
        'TokenVerifierError',
        `the session was not attested with node ${node.agentId}'s registered AK: attest again`,
      ]);
    } finally {
      await enrol(node.akTpm);
      await otherTpm.close();
    }
    expect(await fetch(), 'the AK it attested with is registered again').to.have.property('body');
    expect(await http.send('GET', resourcePath, { headers: { cookie: await attestedCookie() } }), 'a new session works').to.have.property('body');
  });
});
