import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createAgentService } from '../../lib/agent/agent-service.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import type { KeylimeService } from '../../lib/http/keylime-service.js';
import { KbsClientBuilder } from '../../lib/kbs-client/kbs-client-builder.js';
import { KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { TpmEvidenceProvider } from '../../lib/kbs-client/tpm-evidence-provider.js';
import { brokerRevocationTarget } from '../../lib/revocation/broker-revocation-target.js';
import { asctime, signRevocation, type RevocationEnvelope, type RevocationMessage } from '../../lib/revocation/revocation-message.js';
import type { AgentFailureNotice, RevocationAgentTarget } from '../../lib/revocation/revocation-notice.js';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { RevocationQueueFull, RevocationReceiver, scriptAction } from '../../lib/revocation/revocation-receiver.js';
import { checkRevocationEnvelope, revocationVerifyKey } from '../../lib/revocation/revocation-signature.js';
import { createSoftwareAgent, disposeSharedNodeKey, type SoftwareAgent } from '../agent/helpers/software-agent.js';
import { softwareTestNode, startTestBroker, type TestBroker, type TestNode } from '../broker/helpers/broker-fixture.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { failureNotice } from './helpers/failure-notice.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const revocationKeys = newRsaKeyPairSync();
const REVOCATION_KEY_PEM = revocationKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const REVOCATION_PUB_PEM = revocationKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const FORGER_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function notice(agentId: string, extra: Partial<AgentFailureNotice> = {}): AgentFailureNotice {
  return failureNotice(REVOCATION_KEY_PEM, { agentId, context: { message: 'File not found in allowlist: /usr/bin/implant' }, ...extra });
}

/** An HTTP webhook that answers `failStatus` (503) to its first `failures` requests, then 200, and records bodies. */
async function flakyWebhook(failures: number, failStatus = 503): Promise<{ server: Server; url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((request: IncomingMessage, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      bodies.push(text);
      response.statusCode = bodies.length <= failures ? failStatus : 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${address.port}/hook`, bodies };
}

describe('revocation notifications', function () {
  this.timeout(60_000);

  it('signs in Keylime\'s format (RSA-PSS SHA-256) and the signature checks; asctime matches Python', function () {
    const message: RevocationMessage = {
      type: 'revocation', ip: null, agent_id: 'a', port: null, tpm_policy: '{}', meta_data: '{}',
      event_time: asctime(Date.UTC(2026, 11, 2, 8, 5, 9)), event_id: 'x', severity_label: 'emergency', context: '{}',
    };
    expect(message.event_time).to.equal('Wed Dec  2 08:05:09 2026');
    const envelope = signRevocation(message, REVOCATION_KEY_PEM);
    const key = revocationVerifyKey(REVOCATION_PUB_PEM);
    expect(checkRevocationEnvelope(envelope, key)).to.deep.equal({ ok: true, message });
    expect(checkRevocationEnvelope({ ...envelope, msg: envelope.msg.replace('"a"', '"b"') }, key)).to.deep.equal({ ok: false, reason: 'revocation message signature is invalid' });
    expect(checkRevocationEnvelope(signRevocation(message, FORGER_KEY_PEM), key).ok).to.equal(false);
    expect(checkRevocationEnvelope(signRevocation(message, ''), key)).to.deep.equal({ ok: false, reason: 'unsigned revocation message' });
    expect(checkRevocationEnvelope({ msg: envelope.msg, signature: 'AAAA' }, key).ok).to.equal(false);
  });

  it('reaches a webhook that fails twice, with back-off, without blocking the caller', async function () {
    const hook = await flakyWebhook(2);
    const notifier = new RevocationNotifier({ webhooks: [hook.url], retry: { attempts: 5, initialDelayMs: 20, maxDelayMs: 100 } });
    try {
      const returned = notifier.agentFailed(notice('failed-node'));
      expect(returned).to.equal(undefined);
      expect(hook.bodies).to.have.length(0);
      await notifier.idle();
      expect(hook.bodies).to.have.length(3);
      const envelope = JSON.parse(hook.bodies[2] as string) as RevocationEnvelope;
      const check = checkRevocationEnvelope(envelope, revocationVerifyKey(REVOCATION_PUB_PEM));
      expect(check.ok && check.message.agent_id).to.equal('failed-node');
      expect(check.ok && check.message.event_id).to.equal('ima.validation.ima-ng.not_in_allowlist');
    } finally {
      await notifier.close();
      await new Promise<void>((resolve) => hook.server.close(() => resolve()));
    }
  });

  it('gives up after its attempts on a dead webhook, and does not retry a refusal (4xx other than 408/429); the caller never sees an error', async function () {
    for (const [status, tries] of [[503, 3], [403, 1]] as const) {
      const hook = await flakyWebhook(100, status);
      const notifier = new RevocationNotifier({ webhooks: [hook.url], retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 20 } });
      try {
        notifier.agentFailed(notice('failed-node'));
        await notifier.idle();
        expect(hook.bodies, `status ${status}`).to.have.length(tries);
      } finally {
        await notifier.close();
        await new Promise<void>((resolve) => hook.server.close(() => resolve()));
      }
    }
  });

  it('closing does not wait out back-offs: each delivery in flight gets its current try, none after', async function () {
    const hook = await flakyWebhook(100);
    const notifier = new RevocationNotifier({ webhooks: [hook.url], retry: { attempts: 5, initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    try {
      notifier.agentFailed(notice('failed-node'));
      while (hook.bodies.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const started = Date.now();
      await notifier.close();
      // The back-off is 60 s; 15 s leaves room for a CI host that stalls this process for ~3 s.
      expect(Date.now() - started).to.be.below(15_000);
      expect(hook.bodies.length).to.be.within(1, 2);
    } finally {
      await new Promise<void>((resolve) => hook.server.close(() => resolve()));
    }
  });

  it('closing stops a fan-out in progress: the agents in flight get their current try, no further agent is started', async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 5, initialDelayMs: 10, maxDelayMs: 10 } });
    let tried = 0;
    // 40 agents that do not answer: each try hangs until the test lets the tries in flight fail. No clock:
    // a CI host that stalled this process let 300 ms tries fail and the workers start further agents.
    let failTries!: () => void;
    const triesFail = new Promise<void>((resolve) => (failTries = resolve));
    const targets = Array.from({ length: 40 }, (_, i) => ({
      agentId: `agent-${i}`,
      tenant: 'tenant-a',
      url: 'https://192.0.2.1:9002',
      apiVersion: '2.2',
      post: async (): Promise<void> => {
        tried += 1;
        await triesFail;
        throw new Error('timed out');
      },
    }));
    notifier.agentFailed(notice('failed', { otherAgents: targets }));
    while (tried < 8) await new Promise((resolve) => setTimeout(resolve, 10));
    let closed = false;
    const closing = notifier.close().then(() => (closed = true));
    // Nothing ends the tries in flight but the test, so close cannot have returned yet.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed, 'close waits for the tries in flight').to.equal(false);
    failTries();
    await closing;
    expect(tried, 'the 8 in flight, none started after close').to.equal(8);
  });

  it('without a pinned certificate, checks the agent\'s name against its CA-issued certificate: one reached at an address it does not name gets nothing', async function () {
    const tls = tlsFixture();
    const bodies: string[] = [];
    const server = createHttpsServer({ cert: tls.server.certPem, key: tls.server.keyPem }, (request, response) => {
      request.resume();
      request.on('end', () => {
        bodies.push(request.headers.host ?? '');
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    const port = (server.address() as { port: number }).port;
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem, ca: tls.ca.certPem }, retry: { attempts: 1 } });
    try {
      // The server's certificate names localhost, 127.0.0.1 and ::1, not 127.0.0.2.
      const target = (agentId: string, host: string): RevocationAgentTarget => ({ agentId, tenant: 'tenant-a', url: `https://${host}:${port}`, apiVersion: '2.2' });
      notifier.agentFailed(notice('failed-node', { otherAgents: [target('named', '127.0.0.1'), target('unnamed', '127.0.0.2')] }));
      await notifier.idle();
      expect(bodies).to.deep.equal([`127.0.0.1:${port}`]);
    } finally {
      await notifier.close();
      server.close();
    }
  });

  it('lists the other agents off the caller\'s stack and delivers to them over their own connections, a few at a time, retrying each', async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 5 } });
    let listed = 0;
    let running = 0;
    let mostRunning = 0;
    const delivered = new Map<string, number>();
    const targets = Array.from({ length: 3000 }, (_, i) => ({
      agentId: `agent-${i}`,
      tenant: 'tenant-a',
      url: 'https://127.0.0.1:1',
      apiVersion: '2.2',
      post: async (body: string): Promise<void> => {
        running += 1;
        mostRunning = Math.max(mostRunning, running);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        delivered.set(`agent-${i}`, (delivered.get(`agent-${i}`) ?? 0) + 1);
        expect((JSON.parse(body) as RevocationEnvelope).signature).to.be.a('string');
        if (i === 7 && delivered.get('agent-7') === 1) throw new Error('first try refused');
      },
    }));
    try {
      notifier.agentFailed(notice('agent-0', {
        otherAgents: () => {
          listed += 1;
          return targets;
        },
      }));
      expect(listed).to.equal(0);
      await notifier.idle();
      expect(listed).to.equal(1);
      expect(delivered.has('agent-0')).to.equal(false);
      expect(delivered.size).to.equal(2999);
      expect(delivered.get('agent-7')).to.equal(2);
      expect(mostRunning).to.be.within(2, 8);
    } finally {
      await notifier.close();
    }
  });

  it("sends a notice only to the failed agent's own tenant: not to another tenant's agents, not to an agent of no known tenant, to none for a notice of no tenant", async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 1 } });
    const sent: string[] = [];
    const target = (agentId: string, tenant?: string): RevocationAgentTarget => ({
      agentId,
      ...(tenant === undefined ? {} : { tenant }),
      url: 'https://127.0.0.1:1',
      apiVersion: '2.2',
      post: async (): Promise<void> => {
        sent.push(agentId);
      },
    });
    const targets = [target('a-1', 'tenant-a'), target('a-2', 'tenant-a'), target('b-1', 'tenant-b'), target('default-1', 'default'), target('unknown-1')];
    const announce = async (extra: Partial<AgentFailureNotice>): Promise<string[]> => {
      sent.length = 0;
      notifier.agentFailed(notice('a-1', { otherAgents: targets, ...extra }));
      await notifier.idle();
      return [...sent].sort();
    };
    try {
      expect(await announce({})).to.deep.equal(['a-2']);
      expect(await announce({ tenant: 'default' }), 'the default tenant is a tenant of its own').to.deep.equal(['default-1']);
      expect(await announce({ tenant: undefined }), 'a failure of no known tenant is sent to no agent').to.deep.equal([]);
    } finally {
      await notifier.close();
    }
  });

  it('does not send an agent a notice it refused outright (403, 404) on the same connection for the same signer; sends again after a reconnect, for another signer, and after any other refusal', async function () {
    const tls = tlsFixture();
    const notifier = new RevocationNotifier({ agentTls: { cert: tls.client.certPem, key: tls.client.keyPem }, retry: { attempts: 3, initialDelayMs: 5, maxDelayMs: 5 } });
    const answers: Record<string, number> = { 'no-key': 403, 'no-route': 404, 'too-large': 400, accepts: 200, 'no-connection': 403 };
    const connection: Record<string, number | undefined> = { 'no-key': 1, 'no-route': 1, 'too-large': 1, accepts: 1, 'no-connection': undefined };
    const sent: string[] = [];
    const targets = Object.keys(answers).map((agentId) => ({
      agentId,
      tenant: 'tenant-a',
      url: 'https://127.0.0.1:1',
      apiVersion: '2.2',
      receiver: () => connection[agentId],
      post: async (): Promise<void> => {
        sent.push(agentId);
        const status = answers[agentId] as number;
        if (status !== 200) throw new KeylimeHttpError(`https://${agentId}/v2.2/notifications/revocation`, status, 'refused', {});
      },
    }));
    const announce = async (extra: Partial<AgentFailureNotice> = {}): Promise<string[]> => {
      sent.length = 0;
      notifier.agentFailed(notice('failed', { otherAgents: targets, ...extra }));
      await notifier.idle();
      return [...sent].sort();
    };
    try {
      expect(await announce(), 'the first notice goes to every agent').to.deep.equal(['accepts', 'no-connection', 'no-key', 'no-route', 'too-large']);
      expect(await announce(), 'the same signer: not to those that refused it outright on this connection').to.deep.equal(['accepts', 'no-connection', 'too-large']);
      expect(await announce({ revocationKey: FORGER_KEY_PEM }), 'another signer').to.deep.equal(['accepts', 'no-connection', 'no-key', 'no-route', 'too-large']);
      expect(await announce({ revocationKey: '' }), 'unsigned is a signer of its own').to.deep.equal(['accepts', 'no-connection', 'no-key', 'no-route', 'too-large']);
      expect(await announce({ revocationKey: '' })).to.deep.equal(['accepts', 'no-connection', 'too-large']);
      connection['no-key'] = 2;
      expect(await announce(), 'a new connection (the agent may have restarted with a key)').to.deep.equal(['accepts', 'no-connection', 'no-key', 'too-large']);
      expect(await announce()).to.deep.equal(['accepts', 'no-connection', 'too-large']);
    } finally {
      await notifier.close();
    }
  });

  describe('agent /notifications/revocation', function () {
    let agent: SoftwareAgent;
    let service: KeylimeService;
    let received: RevocationMessage[];
    let receiver: RevocationReceiver;
    let agentUrl: string;
    const tls = tlsFixture();

    before(async function () {
      agent = await createSoftwareAgent();
      received = [];
      receiver = new RevocationReceiver({
        key: revocationVerifyKey(REVOCATION_PUB_PEM),
        actions: [async (message) => void received.push(message)],
      });
      service = createAgentService({ ...agent.context, revocation: receiver }, { cert: tls.agent.certPem, key: tls.agent.keyPem, clientCa: tls.ca.certPem });
      agentUrl = (await service.listen({ port: 0 })).url;
    });

    after(async function () {
      await service?.close();
      await agent?.dispose();
      await disposeSharedNodeKey();
    });

    it('a verifier\'s notification reaches the agent over mTLS and runs its actions', async function () {
      const notifier = new RevocationNotifier({
        agentTls: { cert: tls.client.certPem, key: tls.client.keyPem },
        retry: { attempts: 2, initialDelayMs: 10 },
      });
      notifier.agentFailed(notice('failed-node', { otherAgents: [{ agentId: agent.uuid, tenant: 'tenant-a', url: agentUrl, apiVersion: '2.2', mtlsCert: tls.agent.certPem }] }));
      // Delivered before closing: closing starts no agent of a fan-out not yet under way.
      await notifier.idle();
      await notifier.close();
      await receiver.settled();
      expect(received.map((m) => [m.agent_id, m.type])).to.deep.equal([['failed-node', 'revocation']]);
    });

    it('a forged, tampered or unsigned message is refused (403) and runs nothing', async function () {
      received = [];
      const message = messageOf('x');
      const good = signRevocation(message, REVOCATION_KEY_PEM);
      for (const body of [signRevocation(message, FORGER_KEY_PEM), { ...good, msg: good.msg.replace('"x"', '"y"') }, signRevocation(message, '')]) {
        const reply = await service.app.inject({ method: 'POST', url: '/v2.2/notifications/revocation', payload: body });
        expect(reply.statusCode).to.equal(403);
      }
      expect(received).to.have.length(0);
      const accepted = await service.app.inject({ method: 'POST', url: '/v2.2/notifications/revocation', payload: good });
      expect(accepted.statusCode).to.equal(200);
      await receiver.settled();
      expect(received).to.have.length(1);
    });

    it('a signed message of a type Keylime does not send is refused (403) and runs nothing', async function () {
      received = [];
      const odd = signRevocation({ ...messageOf('odd'), type: 'anything-at-all' as 'revocation' }, REVOCATION_KEY_PEM);
      const reply = await service.app.inject({ method: 'POST', url: '/v2.2/notifications/revocation', payload: odd });
      expect(reply.statusCode).to.equal(403);
      expect(JSON.parse(reply.body).status).to.include('unknown type');
      const commError = signRevocation({ ...messageOf('silent-node'), type: 'comm_error' }, REVOCATION_KEY_PEM);
      expect((await service.app.inject({ method: 'POST', url: '/v2.2/notifications/revocation', payload: commError })).statusCode).to.equal(200);
      await receiver.settled();
      expect(received.map((m) => m.type)).to.deep.equal(['comm_error']);
    });
  });

  describe('RevocationReceiver: actions after the answer, once per notice, bounded', function () {
    const key = revocationVerifyKey(REVOCATION_PUB_PEM);

    it('answers before a slow action ends; a re-sent or replayed notice runs nothing again', async function () {
      let release: () => void = () => undefined;
      const runs: string[] = [];
      const receiver = new RevocationReceiver({
        key,
        actions: [(message) => new Promise<void>((resolve) => { runs.push(message.agent_id); release = resolve; })],
      });
      const envelope = signRevocation(messageOf('slow'), REVOCATION_KEY_PEM);
      await receiver.receive(envelope);
      await receiver.receive(envelope);
      await new Promise((resolve) => setImmediate(resolve));
      expect(runs).to.deep.equal(['slow']);
      release();
      await receiver.settled();
      await receiver.receive(envelope);
      await receiver.settled();
      expect(runs).to.deep.equal(['slow']);
    });

    it('refuses a notice (503) while 64 wait for their actions, and takes it once they ran', async function () {
      const releases: (() => void)[] = [];
      let runs = 0;
      const receiver = new RevocationReceiver({
        key,
        actions: [() => new Promise<void>((resolve) => { runs += 1; releases.push(resolve); })],
      });
      for (let i = 0; i < 64; i += 1) await receiver.receive(signRevocation(messageOf(`queued-${i}`), REVOCATION_KEY_PEM));
      const late = signRevocation(messageOf('late'), REVOCATION_KEY_PEM);
      let refused: unknown;
      await receiver.receive(late).catch((error: unknown) => (refused = error));
      expect(refused).to.be.instanceOf(RevocationQueueFull);
      while (runs < 64) {
        await new Promise((resolve) => setImmediate(resolve));
        releases.shift()?.();
      }
      releases.forEach((resolve) => resolve());
      await receiver.settled();
      await receiver.receive(late);
      await new Promise((resolve) => setImmediate(resolve));
      releases.forEach((resolve) => resolve());
      await receiver.settled();
      expect(runs).to.equal(65);
    });

    it('an action that exits without reading the message does not end the process (EPIPE), and counts as run', async function () {
      const ran: string[] = [];
      const receiver = new RevocationReceiver({ key, actions: [scriptAction('/bin/true'), async (message) => void ran.push(message.agent_id)] });
      // A message larger than a pipe's buffer, so that writing it fails once /bin/true has exited.
      for (let i = 0; i < 10; i += 1) {
        await receiver.receive(signRevocation({ ...messageOf(`big-${i}`), meta_data: JSON.stringify({ pad: 'x'.repeat(512 * 1024) }) }, REVOCATION_KEY_PEM));
      }
      await receiver.settled();
      expect(ran).to.have.length(10);
    });
  });

  describe('broker withdrawal', function () {
    let broker: TestBroker;
    let node: TestNode;
    let dir: string;

    before(async function () {
      dir = await mkdtemp(path.join(tmpdir(), 'ironlime-revocation-'));
      await writeFile(path.join(dir, 'revocation.pem'), REVOCATION_PUB_PEM);
      broker = await startTestBroker({ revocationCert: path.join(dir, 'revocation.pem') });
      node = await softwareTestNode();
      await broker.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy() });
      await broker.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'k' }, new Uint8Array([7]), { agents: [node.agentId] });
    });

    after(async function () {
      await node?.dispose();
      await broker?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    function nodeClient(): ReturnType<KbsClientBuilder['build']> {
      return new KbsClientBuilder(broker.running.url)
        .ca(broker.running.caCert)
        .evidenceProvider(new TpmEvidenceProvider({ tpm: node.tpm, agentId: node.agentId, imaLogPath: node.emulated.imaLogPath }))
        .build();
    }

    it('a signed revocation webhook to the broker withdraws the node at once; a forged one is refused', async function () {
      const built = nodeClient();
      try {
        expect(Array.from(await built.client.getResource('kbs:///node/disk-key/k'))).to.deep.equal([7]);
        const forger = new RevocationNotifier({ webhooks: [`${broker.running.url}/kbs/v0/revocation`], webhookCa: broker.running.caCert, retry: { attempts: 1 } });
        forger.agentFailed(notice(node.agentId, { revocationKey: FORGER_KEY_PEM }));
        await forger.close();
        expect(Array.from(await built.client.getResource('kbs:///node/disk-key/k'))).to.deep.equal([7]);
        const verifier = new RevocationNotifier({ webhooks: [`${broker.running.url}/kbs/v0/revocation`], webhookCa: broker.running.caCert, retry: { attempts: 1 } });
        verifier.agentFailed(notice(node.agentId));
        await verifier.close();
        const error = await built.client.getResource('kbs:///node/disk-key/k').then(() => undefined, (e: unknown) => e);
        expect(error).to.be.instanceOf(KbsRefusedError);
        expect((error as KbsRefusedError).detail).to.contain('revoked');
      } finally {
        await built.close();
        await broker.admin.reinstate(node.agentId);
      }
    });

    it('the in-process target revokes through BrokerService', async function () {
      const built = nodeClient();
      try {
        expect(Array.from(await built.client.getResource('kbs:///node/disk-key/k'))).to.deep.equal([7]);
        // Stamped a second on: the previous test delivered this node's failure and reinstated it, and a
        // message identical to that one (the same second, asctime's whole seconds) is a replay, ignored.
        const notifier = new RevocationNotifier({ targets: { broker: brokerRevocationTarget(broker.running.service) }, retry: { attempts: 1 }, now: () => Date.now() + 1000 });
        notifier.agentFailed(notice(node.agentId));
        await notifier.close();
        const error = await built.client.getResource('kbs:///node/disk-key/k').then(() => undefined, (e: unknown) => e);
        expect((error as KbsRefusedError).detail).to.contain('revoked');
      } finally {
        await built.close();
      }
    });
  });
});

function messageOf(agentId: string): RevocationMessage {
  return {
    type: 'revocation', ip: null, agent_id: agentId, port: null, tpm_policy: '{}', meta_data: '{}',
    event_time: asctime(Date.now()), event_id: 'e', severity_label: 'emergency', context: '{}',
  };
}
