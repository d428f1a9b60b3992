import { expect } from 'chai';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { expectRefused } from './helpers/kbs-refusals.js';
import { startTestBroker, type TestBroker } from './helpers/broker-fixture.js';

const AGENT = '6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60';

/** What a malformed request is told: the status and KBS type its route uses, and a detail naming the fault. PostgreSQL. */
describe('broker: malformed requests', function () {
  this.timeout(30_000);
  let broker: TestBroker;
  let http: KbsHttp;

  before(async function () {
    broker = await startTestBroker();
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
  });

  after(async function () {
    await http?.close();
    await broker?.dispose();
  });

  it('a node whose policy does not compile is 400 SerdeError naming the node, as other malformed admin bodies; nothing is stored', async function () {
    const detail = await expectRefused(broker.admin.putNode(AGENT, { tpmPolicy: 'not json' }), 400, 'SerdeError', 'tpm_policy');
    expect(detail).to.match(new RegExp(`^node ${AGENT}: .*tpm_policy`));
    await expectRefused(broker.admin.putNode(AGENT, { runtimePolicy: '{"digests": 1}' }), 400, 'SerdeError', 'runtime_policy');
    await expectRefused(broker.admin.deleteNode(AGENT), 404, 'InvalidRequestPath', 'nothing stored');
  });

  it('a reinstatement whose version is not the decimal a GET answered is 404 InvalidRequestPath naming it, as every malformed path or query; a revocation GET answers its version', async function () {
    expect(await broker.admin.revocationInForce(AGENT)).to.equal(null);
    await broker.admin.revoke(AGENT, 'test');
    const version = await broker.admin.revocationInForce(AGENT);
    expect(version).to.match(/^[0-9]+$/);
    await expectRefused(broker.admin.reinstate(AGENT, 'x1'), 404, 'InvalidRequestPath', 'query.version');
    await expectRefused(broker.admin.reinstate(AGENT, String(Number(version) + 1)), 409, 'AdminConflict', 'revoked again');
    await broker.admin.reinstate(AGENT, version as string);
    expect(await broker.admin.revocationInForce(AGENT)).to.equal(null);
  });

  it('/auth without tee or version names the missing member; a wrong value is told its form', async function () {
    const auth = (body: object): Promise<string> => expectRefused(http.send('POST', '/kbs/v0/auth', { body }), 401, 'SerdeError', JSON.stringify(body));
    expect(await auth({ version: '0.4.0' })).to.equal('body.tee: is required');
    expect(await auth({ tee: 'tpm' })).to.equal('body.version: is required');
    expect(await auth({ version: '0.4.0', tee: 5 })).to.equal('body.tee: must be a string of at most 32 characters');
    expect(await auth({ version: '0.4.0', tee: 'x'.repeat(33) })).to.equal('body.tee: must be a string of at most 32 characters');
  });
});
