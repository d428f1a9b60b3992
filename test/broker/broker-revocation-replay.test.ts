import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { startBroker, type RunningBroker } from '../../lib/broker/broker-server.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { brokerRevocationTarget } from '../../lib/revocation/broker-revocation-target.js';
import { asctime, parseAsctime, signRevocation, type RevocationEnvelope, type RevocationMessage } from '../../lib/revocation/revocation-message.js';
import { forEachDatabase } from '../helpers/databases.js';
import { attestedSession, refusal, softwareTestNode, type TestNode } from './helpers/broker-fixture.js';

const revocationKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const REVOCATION_KEY_PEM = revocationKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/**
 * A validly signed revocation message sent again after an operator reinstated the node (a replay, or a
 * delivery retried past the reinstatement) does not revoke it again: only a message whose `event_time`
 * is later than the reinstatement does. Real signed messages over HTTPS; PostgreSQL and PGlite (the
 * revocation is one conditional upsert); software TPM.
 */
forEachDatabase('broker: a revocation message older than the reinstatement does not revoke', (fixture) => {
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
    running = await startBroker({ port: 0, dataDir: dir, revocationCert: path.join(dir, 'revocation.pem') }, { database: fixture.database });
    const tls = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'broker-admin' });
    admin = new BrokerAdminClient({ url: running.url, ca: running.caCert, cert: tls.cert, key: tls.key });
    node = await softwareTestNode();
    await admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy() });
    await admin.putResource({ repository: 'node', type: 'disk-key', tag: 'replay' }, new Uint8Array([5]), { agents: [node.agentId] });
    http = new KbsHttp({ url: running.url, ca: running.caCert });
  });

  after(async function () {
    await http?.close();
    await admin?.close();
    await running?.close();
    await node?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('revoke, reinstate, replay: still reinstated; a message stamped in the reinstatement\'s second is ignored too; a later one revokes', async function () {
    const captured = message(Date.now());
    expect(await deliver(captured)).to.equal(204);
    expect(await releases(), 'revoked').to.equal(false);

    await admin.reinstate(node.agentId);
    const row = (await fixture.database.knex('broker_revocations').where({ agent_id: node.agentId }).first()) as { reinstated_at: string | number };
    const reinstatedAt = Number(row.reinstated_at);
    expect(await releases(), 'reinstated').to.equal(true);

    expect(await deliver(captured), 'the replay is answered as delivered').to.equal(204);
    expect(await releases(), 'the replay did not revoke').to.equal(true);
    // asctime has whole seconds: a stamp in the reinstatement's second may be from before it.
    expect(await deliver(message(Math.floor(reinstatedAt / 1000) * 1000 + 999))).to.equal(204);
    expect(await releases(), 'same second as the reinstatement').to.equal(true);
    const older = messageOf(node.agentId, asctime(reinstatedAt - 1000));
    await brokerRevocationTarget(running.service)(older, signRevocation(older, REVOCATION_KEY_PEM));
    expect(await releases(), 'in-process target, older message').to.equal(true);

    expect(await deliver(message(reinstatedAt + 1000))).to.equal(204);
    expect(await releases(), 'a message from after the reinstatement revokes').to.equal(false);
  });

  it('reads event_time exactly as asctime writes it (UTC), and nothing else', function () {
    const ms = Date.UTC(2026, 11, 4, 20, 5, 9);
    expect(parseAsctime('Fri Dec  4 20:05:09 2026')).to.equal(ms);
    expect(parseAsctime(asctime(Date.UTC(2026, 0, 31, 0, 0, 0)))).to.equal(Date.UTC(2026, 0, 31));
    for (const text of ['Thu Dec  4 20:05:09 2026', 'Fri Dec 04 20:05:09 2026', 'Fri Dec  4 20:05:09 2026 ', 'Tue Feb 31 00:00:00 2026', 'Fri Dec  4 24:00:00 2026', '']) {
      expect(parseAsctime(text), text).to.equal(undefined);
    }
  });

  it('a signed message whose event_time cannot be read revokes (fail closed), also after a reinstatement', async function () {
    await admin.reinstate(node.agentId).catch(() => undefined);
    expect(await releases()).to.equal(true);
    expect(await deliver(message(0, 'yesterday'))).to.equal(204);
    expect(await releases()).to.equal(false);
  });
});

function messageOf(agentId: string, eventTime: string): RevocationMessage {
  return {
    type: 'revocation', ip: null, agent_id: agentId, port: null, tpm_policy: '{}', meta_data: '{}',
    event_time: eventTime, event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: '{}',
  };
}
