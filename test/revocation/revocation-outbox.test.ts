import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { brokerRevocationTarget } from '../../lib/revocation/broker-revocation-target.js';
import type { RevocationEnvelope } from '../../lib/revocation/revocation-message.js';
import type { AgentFailureNotice } from '../../lib/revocation/revocation-notice.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { forEachDatabase, openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { attestedSession, refusal, softwareTestNode, startTestBroker, type TestBroker, type TestNode } from '../broker/helpers/broker-fixture.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const REVOCATION_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** Back-off of these tests: 50 ms doubling to 200 ms; the old in-memory budget with it (5 tries) was 750 ms. */
const FAST = { backoff: { initialDelayMs: 50, maxDelayMs: 200 }, pollMs: 100, leaseSeconds: 5 };

function notice(agentId: string): AgentFailureNotice {
  return {
    agentId,
    ip: null,
    port: null,
    tpmPolicy: '{}',
    metaData: '{}',
    revocationKey: REVOCATION_KEY_PEM,
    eventId: 'ima.validation.ima-ng.not_in_allowlist',
    severityLabel: 'emergency',
    context: {},
  };
}

/** A webhook answering `status()` to each request, recording the bodies. */
async function webhook(status: () => number): Promise<{ server: Server; url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      bodies.push(body);
      response.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoked`, bodies };
}

async function undelivered(opened: OpenedDatabase): Promise<{ receiver: string; attempts: number }[]> {
  return opened.database.knex('verifier_revocation_outbox').select('receiver', 'attempts');
}

/**
 * The revocation outbox (`RevocationOutbox`, PostgreSQL): a notice to a configured receiver is kept
 * until the receiver takes it — through an outage longer than the old in-memory retries lasted, and
 * across the notifier's restart.
 */
describe('revocation outbox: a notice is never lost', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
  });

  afterEach(async function () {
    await opened?.dispose();
  });

  describe('the broker as receiver', function () {
    let broker: TestBroker;
    let node: TestNode;
    let http: KbsHttp;

    beforeEach(async function () {
      broker = await startTestBroker({}, opened.database);
      node = await softwareTestNode();
      await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() });
      await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'k1' }, new Uint8Array([7]), { agents: [node.agentId] });
      http = new KbsHttp({ url: broker.running.url, ca: broker.running.caCert });
    });

    afterEach(async function () {
      await http?.close();
      await node?.dispose();
      await broker?.dispose();
    });

    it("the broker's database failing for longer than the old retries is survived: the node is revoked once it is back, its fetch refused", async function () {
      const session = await attestedSession(http, node);
      const knex = opened.database.knex;
      await knex.raw('alter table broker_applied_revocations rename to broker_applied_revocations_down');
      const notifier = new RevocationNotifier({ targets: { broker: brokerRevocationTarget(broker.running.service) }, outbox: { knex, ...FAST } });
      try {
        notifier.start();
        notifier.agentFailed(notice(node.agentId));
        await eventually('several failed attempts', async () => ((await undelivered(opened))[0]?.attempts ?? 0) >= 8);
        expect(await broker.admin.revocationInForce(node.agentId)).to.equal(null);
        await knex.raw('alter table broker_applied_revocations_down rename to broker_applied_revocations');
        await eventually('the notice delivered', async () => (await undelivered(opened)).length === 0);
        expect(await broker.admin.revocationInForce(node.agentId)).to.be.a('string');
        const refused = await refusal(http.send('GET', '/kbs/v0/resource/node/disk-key/k1', { headers: { cookie: session.cookie } }));
        expect([refused.remoteHttpStatus, refused.detail]).to.deep.equal([401, `node ${node.agentId} is revoked`]);
      } finally {
        await notifier.close();
      }
    });
  });

  it('a notice undelivered when its notifier closes stays in the table and is delivered by the next one on the same database', async function () {
    let status = 500;
    const hook = await webhook(() => status);
    try {
      const first = new RevocationNotifier({ webhooks: [hook.url], outbox: { knex: opened.database.knex, ...FAST } });
      first.start();
      first.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60'));
      await eventually('two refused attempts', async () => hook.bodies.length >= 2);
      await first.close();
      expect(await undelivered(opened)).to.have.length(1);
      expect(await first.undelivered()).to.equal(1);

      status = 200;
      const second = new RevocationNotifier({ webhooks: [hook.url], outbox: { knex: opened.database.knex, ...FAST } });
      try {
        second.start();
        await eventually('the notice delivered after the restart', async () => (await undelivered(opened)).length === 0);
      } finally {
        await second.close();
      }
      const bodies = new Set(hook.bodies);
      expect(bodies.size, 'the same signed envelope every time (receivers dedupe by it)').to.equal(1);
      expect((JSON.parse(hook.bodies.at(-1) as string) as RevocationEnvelope).msg).to.contain('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60');
    } finally {
      await new Promise((resolve) => hook.server.close(resolve));
    }
  });

  it('a notice kept for an in-process target goes to that target after the targets are reordered or one removed, never to another', async function () {
    const knex = opened.database.knex;
    const taken: Record<string, number> = { audit: 0, broker: 0 };
    const target = (name: string) => async (): Promise<void> => {
      taken[name] = (taken[name] ?? 0) + 1;
    };
    const first = new RevocationNotifier({ targets: { audit: target('audit'), broker: target('broker') }, outbox: { knex, ...FAST } });
    first.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60'));
    await first.close();
    expect(await undelivered(opened)).to.have.length(2);
    const second = new RevocationNotifier({ targets: { broker: target('broker') }, outbox: { knex, ...FAST } });
    try {
      second.start();
      await eventually('the broker notice delivered', async () => (await undelivered(opened)).length === 1);
    } finally {
      await second.close();
    }
    expect(taken, 'the removed target\'s notice is not sent to the one now first').to.deep.equal({ audit: 0, broker: 1 });
    expect((await undelivered(opened)).map((row) => row.receiver)).to.deep.equal(['target audit']);
  });

  it('notices for a receiver this process does not have stay in the table, with one warning per receiver, not one per row and pass', async function () {
    const knex = opened.database.knex;
    const gone = new RevocationNotifier({ webhooks: ['http://127.0.0.1:9/gone'], outbox: { knex, ...FAST } });
    gone.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60'));
    gone.agentFailed(notice('7a1d2f3b-9c5e-4d0f-b2a4-6e8c0f3d5b71'));
    await gone.close();
    const warnings: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done): void {
        const line = JSON.parse(chunk.toString('utf8')) as { level: number; msg: string };
        if (line.level >= 40) warnings.push(line.msg);
        done();
      },
    });
    // `maxDelayMs` 200: each row comes round every 200 ms.
    const here = new RevocationNotifier({ webhooks: [], outbox: { knex, ...FAST }, log: pino({ level: 'debug' }, sink) });
    try {
      here.start();
      // The first warning, then passes enough for a warning per row and pass to show (a fixed 1.5 s from the
      // start held no pass at all when the host stalled).
      await eventually('the first warning', async () => warnings.length > 0);
      await new Promise((resolve) => setTimeout(resolve, 1500));
    } finally {
      await here.close();
    }
    expect(warnings).to.deep.equal(['revocation notice for a receiver this process does not have: left in the outbox']);
    expect(await undelivered(opened), 'not deleted: another process, or this one reconfigured, delivers them').to.have.length(2);
  });

  it('a final refusal (a 4xx but 401, 403, 408 or 429) deletes the notice; two notifiers on one database send a notice once', async function () {
    const refusing = await webhook(() => 400);
    const taking = await webhook(() => 200);
    const knex = opened.database.knex;
    const one = new RevocationNotifier({ webhooks: [refusing.url, taking.url], outbox: { knex, ...FAST } });
    const two = new RevocationNotifier({ webhooks: [refusing.url, taking.url], outbox: { knex, ...FAST } });
    try {
      one.start();
      two.start();
      one.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60'));
      // Both receivers answered and the outbox is empty (`agentFailed` stores the rows in the background:
      // an empty outbox alone may be one not yet written).
      await eventually('both rows settled', async () => refusing.bodies.length >= 1 && taking.bodies.length >= 1 && (await undelivered(opened)).length === 0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(refusing.bodies, 'refused once, not retried').to.have.length(1);
      expect(taking.bodies, 'delivered once').to.have.length(1);
    } finally {
      await one.close();
      await two.close();
      await new Promise((resolve) => refusing.server.close(resolve));
      await new Promise((resolve) => taking.server.close(resolve));
    }
  });

  it('a notice refused with 401 or 403 (a receiver without the verifier\'s revocation certificate yet) is kept and delivered once the receiver takes it', async function () {
    for (const refusal of [401, 403]) {
      let status = refusal;
      const hook = await webhook(() => status);
      const knex = opened.database.knex;
      const notifier = new RevocationNotifier({ webhooks: [hook.url], outbox: { knex, ...FAST } });
      try {
        notifier.start();
        notifier.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a61'));
        await eventually('refused twice', async () => hook.bodies.length >= 2);
        expect(await undelivered(opened), `kept after ${refusal}`).to.have.length(1);
        status = 200;
        await eventually('delivered once the receiver takes it', async () => (await undelivered(opened)).length === 0);
        expect(new Set(hook.bodies).size).to.equal(1);
      } finally {
        await notifier.close();
        await new Promise((resolve) => hook.server.close(resolve));
      }
    }
  });
});

forEachDatabase('revocation outbox across a restart', (fixture) => {
  it('a notice refused with 500 is kept over the notifier closing and delivered by the next one', async function () {
    this.timeout(30_000);
    let status = 500;
    const hook = await webhook(() => status);
    const knex = fixture.database.knex;
    const rows = async (): Promise<number> => Number(((await knex('verifier_revocation_outbox').count({ n: '*' }).first()) as { n: string | number }).n);
    try {
      const first = new RevocationNotifier({ webhooks: [hook.url], outbox: { knex, ...FAST } });
      first.start();
      first.agentFailed(notice('6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60'));
      await eventually('a refused attempt', async () => hook.bodies.length >= 1);
      await first.close();
      expect(await rows()).to.equal(1);
      status = 200;
      const second = new RevocationNotifier({ webhooks: [hook.url], outbox: { knex, ...FAST } });
      try {
        second.start();
        await eventually('the notice delivered after the restart', async () => (await rows()) === 0);
      } finally {
        await second.close();
      }
      expect(new Set(hook.bodies).size).to.equal(1);
    } finally {
      await new Promise((resolve) => hook.server.close(resolve));
    }
  });
}, { migrate: true });
