import { expect } from 'chai';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { attestedSession, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';

/** `DELETE /kbs/v0/admin/nodes/<id>`: the node's sessions and this broker's tokens stop releasing resources. */
describe('broker: deleting a node ends its credentials', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;
  let broker: TestBroker;
  let node: TestNode;
  let http: KbsHttp;
  const resource = '/kbs/v0/resource/node/disk-key/k1';

  before(async function () {
    opened = await openTestSchema();
    broker = await startTestBroker({}, opened.database);
    node = await softwareTestNode();
    http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
  });

  after(async function () {
    await http?.close();
    await node?.dispose();
    await broker?.dispose();
    await opened?.dispose();
  });

  async function putNode(): Promise<void> {
    await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() });
  }

  it('a deleted node\'s session and token are refused; stored again, it attests afresh and fetches', async function () {
    await putNode();
    await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'k1' }, new Uint8Array([7]), { agents: [node.agentId] });
    const session = await attestedSession(http, node);
    expect((await http.send('GET', resource, { headers: { cookie: session.cookie } })).status).to.equal(200);

    await broker.admin.deleteNode(node.agentId);
    for (const headers of [{ cookie: session.cookie }, { authorization: `Bearer ${session.token}` }] as Record<string, string>[]) {
      const refused = await refusal(http.send('GET', resource, { headers }));
      expect([refused.remoteHttpStatus, refused.kbsType]).to.deep.equal([401, 'TokenVerifierError']);
      expect(refused.detail).to.contain('attest again');
    }
    expect(await broker.admin.revocationInForce(node.agentId), 'not revoked: a node stored again may attest').to.equal(null);

    // Past the deletion's second, then stored again: a new session works, the old one stays refused.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await putNode();
    const fresh = await attestedSession(http, node);
    expect((await http.send('GET', resource, { headers: { cookie: fresh.cookie } })).status).to.equal(200);
    expect((await http.send('GET', resource, { headers: { authorization: `Bearer ${fresh.token}` } })).status).to.equal(200);
    expect((await refusal(http.send('GET', resource, { headers: { cookie: session.cookie } }))).remoteHttpStatus).to.equal(401);
  });

  it('deleting a revoked node leaves the revocation in force', async function () {
    await broker.admin.revoke(node.agentId, 'failed attestation');
    await broker.admin.deleteNode(node.agentId);
    expect(await broker.admin.revocationInForce(node.agentId)).to.be.a('string');
    await putNode();
    expect(await broker.admin.revocationInForce(node.agentId)).to.be.a('string');
  });
});
