import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import type { RunningBroker } from '../../lib/broker/broker-server.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { brokerRevocationTarget } from '../../lib/revocation/broker-revocation-target.js';
import { asctime, signRevocation, type RevocationEnvelope, type RevocationMessage } from '../../lib/revocation/revocation-message.js';
import { forEachDatabase } from '../helpers/databases.js';
import { attestedSession, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from './helpers/broker-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const revocationKeys = newRsaKeyPairSync();
const REVOCATION_KEY_PEM = revocationKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/**
 * A validly signed revocation message sent again after an operator reinstated the node (a replay, or a
 * delivery retried past the reinstatement) does not revoke it again; any other message does, whatever
 * its `event_time` says (the verifier's clock is not compared with the broker's). Real signed messages
 * over HTTPS; PostgreSQL and PGlite (the revocation is one statement); software TPM.
 */
forEachDatabase('broker: a revocation message applied before does not revoke again', (fixture) => {
  let broker: TestBroker;
  let running: RunningBroker;
  let admin: BrokerAdminClient;
  let node: TestNode;
  let http: KbsHttp;
  let dir: string;

  const message = (eventTimeMs: number, eventTime = asctime(eventTimeMs)): RevocationEnvelope =>
    signRevocation(messageOf(node.agentId, eventTime), REVOCATION_KEY_PEM);
  const deliver = async (envelope: RevocationEnvelope): Promise<number> =>
    (await http.send('POST', '/kbs/v0/revocation', { body: envelope })).status;
  /** Whether the node can attest and fetch its resource now. */
  const releases = async (): Promise<boolean> => {
    try {
      const { cookie } = await attestedSession(http, node);
      await http.send('GET', '/kbs/v0/resource/node/disk-key/replay', { headers: { cookie } });
      return true;
    } catch (error) {
      expect((await refusal(Promise.reject(error))).detail).to.contain('is revoked');
      return false;
    }
  };

  before(async function () {
    this.timeout(60_000);
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-revocation-replay-'));
    await writeFile(path.join(dir, 'revocation.pem'), revocationKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    broker = await startTestBroker({ revocationCert: path.join(dir, 'revocation.pem') }, fixture.database);
    ({ running, admin } = broker);
    node = await softwareTestNode();
    await admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy() });
    await admin.putResource({ repository: 'node', type: 'disk-key', tag: 'replay' }, new Uint8Array([5]), { agents: [node.agentId] });
    http = new KbsHttp({ url: running.url, ca: running.caCert });
  });

  after(async function () {
    await http?.close();
    await broker?.dispose();
    await node?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('revoke, reinstate, replay: still reinstated, over HTTPS and in process; another message revokes, even one stamped before the reinstatement', async function () {
    const captured = message(Date.now());
    expect(await deliver(captured)).to.equal(204);
    expect(await releases(), 'revoked').to.equal(false);

    await admin.reinstate(node.agentId);
    const row = (await fixture.database.knex('broker_revocations').where({ agent_id: node.agentId }).first()) as { reinstated_at: string | number };
    const reinstatedAt = Number(row.reinstated_at);
    expect(await releases(), 'reinstated').to.equal(true);

    expect(await deliver(captured), 'the replay is answered as delivered').to.equal(204);
    expect(await releases(), 'the replay did not revoke').to.equal(true);
    const capturedMessage = JSON.parse(captured.msg) as RevocationMessage;
    await brokerRevocationTarget(running.service)(capturedMessage, captured);
    expect(await releases(), 'the same message in process did not revoke').to.equal(true);

    // A verifier whose clock is behind the broker's (or in another time zone) stamps a genuine later failure "before".
    expect(await deliver(message(reinstatedAt - 3_600_000))).to.equal(204);
    expect(await releases(), 'another message revokes').to.equal(false);
  });

  it('a failure message delivered once more while the node is still revoked changes nothing, and counts once', async function () {
    await admin.reinstate(node.agentId).catch(() => undefined);
    const fresh = message(Date.now() + 5_000);
    expect(await deliver(fresh)).to.equal(204);
    expect(await deliver(fresh)).to.equal(204);
    expect(await releases()).to.equal(false);
    const applied = await fixture.database.knex('broker_applied_revocations').where({ agent_id: node.agentId });
    expect(applied, 'one row per distinct message: the captured one, the one stamped an hour early, this one').to.have.length(3);
  });
});

function messageOf(agentId: string, eventTime: string): RevocationMessage {
  return {
    type: 'revocation', ip: null, agent_id: agentId, port: null, tpm_policy: '{}', meta_data: '{}',
    event_time: eventTime, event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: '{}',
  };
}
