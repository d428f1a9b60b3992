import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { PushSessionRepository } from '../../lib/verifier/push/push-session-repository.js';
import { authenticatedPushSession } from './helpers/authenticated-push-session.js';
import { JSON_API, usePushVerifier, type PushNode } from './helpers/push-verifier.js';
import { heldHash } from './helpers/held-hash.js';

/** The deadline of the hashes that hold the gate's threads: ahead of any agent. */
const URGENT = 0;

/** A request over a real connection: `cut()` closes it as a client past its timeout does; `reply` is its status (or 'cut'). */
function cuttableRequest(url: string, method: string, path: string, headers: Record<string, string>, body?: object): { reply: Promise<number | 'cut'>; cut: () => void } {
  let cut: () => void = () => undefined;
  const reply = new Promise<number | 'cut'>((resolve) => {
    const call = httpRequest(`${url}${path}`, { method, headers: { 'content-type': JSON_API, ...headers }, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    call.on('error', () => resolve('cut'));
    cut = () => {
      call.destroy();
      resolve('cut');
    };
    call.end(body === undefined ? undefined : JSON.stringify(body));
  });
  return { reply, cut };
}

/**
 * A 600,000-round hash waiting at the gate (`SlowHashGate`) for a request its client had closed (the
 * push agent gives up after 30 s) still ran once a thread freed, for nobody: during a storm, thread-pool
 * time taken from the agents still waiting. Now it leaves the queue when its connection closes.
 */
describe('push model: a hash whose client has gone is dropped before it runs (real PostgreSQL)', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  let node: PushNode;

  before(async function () {
    node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
  });

  /** Holds every thread of the verifier's gate until `release()`: any new hash waits. */
  function holdTheGate(): { release: () => Promise<void> } {
    const gate = push.verifier.push.slowHashes;
    const held = Array.from({ length: gate.concurrency }, () => heldHash());
    const runs = held.map((hash) => gate.run(() => hash.promise, URGENT));
    return {
      release: async () => {
        for (const hash of held) hash.finish();
        await Promise.all(runs);
      },
    };
  }

  const waitingAtGate = (count: number) =>
    pollUntil({ timeoutMs: 10_000, intervalMs: 20 }, `${count} hashes waiting`, async () => push.verifier.push.slowHashes.waiting === count);

  it('a session proof waiting for its hash leaves the queue when its client closes; one whose client stays is granted', async function () {
    const sessions = new PushSessionRepository(push.opened.database.knex);
    const gone = await push.provableSession(node);
    const staying = await push.provableSession(node);
    const gate = holdTheGate();
    try {
      const leaving = cuttableRequest(push.url, 'PATCH', `/v3.0/sessions/${gone.id}`, {}, gone.body);
      await waitingAtGate(1);
      const waiting = cuttableRequest(push.url, 'PATCH', `/v3.0/sessions/${staying.id}`, {}, staying.body);
      await waitingAtGate(2);
      leaving.cut();
      expect(await leaving.reply).to.equal('cut');
      // Every thread still held: the proof left the queue without running.
      await waitingAtGate(1);
      await gate.release();
      expect(await waiting.reply, 'the proof whose client waited (its body read long ago) is answered').to.equal(200);
      expect((await sessions.findSession(staying.id))?.token).to.not.equal(null);
      expect((await sessions.findSession(gone.id))?.token, 'no token hashed nor granted for the gone client').to.equal(null);
      expect(push.verifier.push.slowHashes.waiting).to.equal(0);
    } finally {
      await gate.release();
    }
  });

  it('a token\'s slow check waiting at the gate leaves the queue when its client closes', async function () {
    const session = await authenticatedPushSession(node.uuid, 'the-secret', 1);
    const sessions = new PushSessionRepository(push.opened.database.knex);
    await sessions.createSession(session);
    expect(await sessions.grantToken(session.sessionId, session.token ?? { salt: '', hash: '' }, session.tokenExpiresAt ?? new Date())).to.equal(true);
    const gate = holdTheGate();
    try {
      const leaving = cuttableRequest(push.url, 'GET', `/v3.0/agents/${node.uuid}/attestations`, { authorization: `Bearer ${session.sessionId}.the-secret` });
      await waitingAtGate(1);
      leaving.cut();
      expect(await leaving.reply).to.equal('cut');
      await waitingAtGate(0);
    } finally {
      await gate.release();
    }
  });
});
