import { expect } from 'chai';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { attestedSession, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/**
 * Tokens and cookie sessions are bound to the AK they were attested with: once the node is enrolled
 * again with another AK, neither releases anything (PostgreSQL, software TPM, real quotes).
 */
describe('broker: credentials are bound to the AK they attested with', function () {
  this.timeout(60_000);
  let broker: TestBroker;
  let node: TestNode;
  let http: KbsHttp;
  const resourcePath = '/kbs/v0/resource/node/join/rack7';

  const enrol = async (akTpm: string): Promise<void> =>
    broker.admin.putNode(node.agentId, { akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate(), groups: ['rack7'] });

  /** Runs `check` while the node is enrolled with another TPM's AK, then enrols its own AK again. */
  async function whileEnrolledWithAnotherAk(check: () => Promise<void>): Promise<void> {
    const otherTpm = await createSoftwareTpm();
    try {
      await enrol(Buffer.from((await otherTpm.ensureAk('sha256')).akPublic).toString('base64'));
      await check();
    } finally {
      await enrol(node.akTpm);
      await otherTpm.close();
    }
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

  it('a token minted for the node\'s previous AK is refused once the node is enrolled again with another AK', async function () {
    const { token } = await attestedSession(http, node);
    const withToken = (bearer: string): Promise<unknown> => http.send('GET', resourcePath, { headers: { authorization: `Bearer ${bearer}` } });
    expect(await withToken(token)).to.have.property('body');
    await whileEnrolledWithAnotherAk(async () => {
      const error = await refusal(withToken(token));
      expect([error.remoteHttpStatus, error.kbsType, error.detail]).to.deep.equal([
        401,
        'TokenVerifierError',
        `token was not issued for node ${node.agentId}'s registered AK: attest again`,
      ]);
    });
    expect(await withToken((await attestedSession(http, node)).token), 'the AK enrolled again: its tokens work').to.have.property('body');
  });

  it('refuses a cookie session while the node is enrolled with another AK, and serves it again once its AK is back', async function () {
    const { cookie } = await attestedSession(http, node);
    const fetch = (): Promise<unknown> => http.send('GET', resourcePath, { headers: { cookie } });
    expect(await fetch()).to.have.property('body');
    await whileEnrolledWithAnotherAk(async () => {
      const error = await refusal(fetch());
      expect([error.remoteHttpStatus, error.kbsType, error.detail]).to.deep.equal([
        401,
        'TokenVerifierError',
        `the session was not attested with node ${node.agentId}'s registered AK: attest again`,
      ]);
    });
    expect(await fetch(), 'the AK it attested with is registered again').to.have.property('body');
    const fresh = await attestedSession(http, node);
    expect(await http.send('GET', resourcePath, { headers: { cookie: fresh.cookie } }), 'a new session works').to.have.property('body');
  });
});
