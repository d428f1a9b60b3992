import { pbkdf2 } from 'node:crypto';
import { expect } from 'chai';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PushSession, PushSessionRepository } from '../../lib/verifier/push/push-session-repository.js';
import { PushRefused } from '../../lib/verifier/push/push-reply.js';
import { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import { SlowHashGate, threadPoolSize } from '../../lib/verifier/push/slow-hash-gate.js';
import { hashTokenSecret } from '../../lib/verifier/push/token-hash.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import type { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { authenticatedPushSession } from './helpers/authenticated-push-session.js';
import { heldHash } from './helpers/held-hash.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00002';

async function refusalOf(work: () => Promise<unknown>): Promise<PushRefused> {
  const error = await work().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(PushRefused);
  return error as PushRefused;
}

describe('push sessions: the token hashes on part of the thread pool (SlowHashGate)', function () {
  it('runs at most `concurrency` hashes at once; the others wait and start in order', async function () {
    const gate = new SlowHashGate(2, 10);
    const held = [heldHash(), heldHash(), heldHash(), heldHash()];
    const started: number[] = [];
    const runs = held.map((hash, i) =>
      gate.run(() => {
        started.push(i);
        return hash.promise;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).to.deep.equal([0, 1]);
    expect(gate.waiting).to.equal(2);
    held[1]?.finish();
    await runs[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).to.deep.equal([0, 1, 2]);
    for (const hash of held) hash.finish();
    expect(await Promise.all(runs)).to.deep.equal(['hashed', 'hashed', 'hashed', 'hashed']);
  });

  it('starts waiting hashes by their agent\'s silence deadline, earliest first, ties in arrival order', async function () {
    const gate = new SlowHashGate(1, 10);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const started: string[] = [];
    const waiting = (
      [
        ['late', 300],
        ['early', 100],
        ['none', Infinity],
        ['middle a', 200],
        ['middle b', 200],
      ] as const
    ).map(([name, deadline]) =>
      gate.run(async () => {
        started.push(name);
        return name;
      }, deadline),
    );
    running.finish();
    await Promise.all([first, ...waiting]);
    expect(started).to.deep.equal(['early', 'middle a', 'middle b', 'late', 'none']);
  });

  it('full, refuses a hash whose deadline is no earlier than the last one waiting, and otherwise refuses that one in its place', async function () {
    const gate = new SlowHashGate(1, 2);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const soon = gate.run(async () => 'soon', 100);
    const later = gate.run(async () => 'later', 500);
    // Deadlines no earlier than the last waiting one (500): refused at once, before any work.
    for (const deadline of [500, 900, Infinity]) {
      expect(() => gate.admit(deadline)).to.throw(PushRefused);
      expect((await refusalOf(() => gate.run(async () => 'not run', deadline))).status).to.equal(503);
    }
    gate.admit(400);
    // An agent closer to being failed takes the place of the one waiting with the latest deadline.
    const urgent = gate.run(async () => 'urgent', 50);
    const displaced = await refusalOf(() => later);
    expect([displaced.status, displaced.code]).to.deep.equal([503, 'verifier_busy']);
    expect(displaced.retryAfter).to.be.at.least(1);
    expect(gate.waiting).to.equal(2);
    running.finish();
    expect(await Promise.all([first, urgent, soon])).to.deep.equal(['hashed', 'urgent', 'soon']);
    expect(gate.busy()).to.not.equal(undefined);
  });

  it('on a slow host, queues no more hashes than it can start within `maxWaitSeconds` (a push agent gives up after 30 s)', async function () {
    expect(new SlowHashGate().maxWaitSeconds).to.be.below(30);
    // A hash timed at about 1 s on 2 threads: 64 waiting would wait 32 s, past the agent's request
    // timeout, and the last hashes would run for agents gone. With 2 s at most, a handful wait.
    const gate = new SlowHashGate(2, 64, 0, Date.now, 2);
    await gate.run(() => new Promise<string>((resolve) => setTimeout(() => resolve('hashed'), 1_000)));
    const room = Math.floor(gate.maxWaitSeconds / gate.hashingSeconds(1));
    expect(room).to.be.within(1, 10);
    const held = Array.from({ length: gate.concurrency + room }, () => heldHash());
    const runs = held.map((hash) => gate.run(() => hash.promise));
    expect(gate.waiting).to.equal(room);
    expect((await refusalOf(() => gate.run(async () => 'not run'))).status).to.equal(503);
    for (const hash of held) hash.finish();
    await Promise.all(runs);
  });

  it('refuses a hash past `maxWaiting` waiting with 503 verifier_busy and a Retry-After, and never runs it', async function () {
    const gate = new SlowHashGate(1, 1);
    const running = heldHash();
    const waiting = heldHash();
    const first = gate.run(() => running.promise);
    const second = gate.run(() => waiting.promise);
    let ran = false;
    const refused = await refusalOf(() =>
      gate.run(() => {
        ran = true;
        return Promise.resolve('hashed');
      }),
    );
    expect(refused.status).to.equal(503);
    expect(refused.code).to.equal('verifier_busy');
    expect(refused.retryAfter).to.be.at.least(1);
    expect(ran).to.equal(false);
    running.finish();
    waiting.finish();
    await Promise.all([first, second]);
  });

  it('remembers when it was busy: from a refusal until no hash waits, refusals within `busyMergeMs` of that end continuing it', async function () {
    const gate = new SlowHashGate(1, 1, 60_000);
    expect(gate.busy(), 'never refused').to.equal(undefined);
    const running = heldHash();
    const waiting = heldHash();
    const first = gate.run(() => running.promise);
    const second = gate.run(() => waiting.promise);
    expect(gate.busy(), 'full, but nobody refused').to.equal(undefined);
    const refusedAt = Date.now() / 1000;
    await refusalOf(() => gate.run(() => Promise.resolve('hashed')));
    const during = gate.busy();
    expect(during?.from).to.be.within(refusedAt - 0.01, Date.now() / 1000);
    expect(during?.to, 'still busy: now').to.be.within(Date.now() / 1000 - 0.05, Date.now() / 1000 + 0.01);
    running.finish();
    await first;
    expect(gate.busy()?.to, 'a hash still waited behind the one done').to.be.within(Date.now() / 1000 - 0.05, Date.now() / 1000 + 0.01);
    waiting.finish();
    await second;
    const ended = gate.busy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gate.busy(), 'over once nothing waited').to.deep.equal(ended);
    const again = [heldHash(), heldHash()];
    const runs = again.map((hash) => gate.run(() => hash.promise));
    await refusalOf(() => gate.run(() => Promise.resolve('hashed')));
    expect(gate.busy()?.from, 'within the merge window: the same busy time').to.equal(during?.from);
    for (const hash of again) hash.finish();
    await Promise.all(runs);
  });

  it('drops a waiting hash whose client has gone: it never runs, the thread passes to the next, and it is not counted as done', async function () {
    const gate = new SlowHashGate(1, 10);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const ran: string[] = [];
    const leaving = new AbortController();
    const gone = gate.run(async () => {
      ran.push('gone');
      return 'gone';
    }, 100, leaving.signal);
    const staying = gate.run(async () => {
      ran.push('staying');
      return 'staying';
    }, 200, new AbortController().signal);
    const speed = gate.hashingSeconds(1);
    leaving.abort();
    const dropped = await refusalOf(() => gone);
    expect([dropped.status, dropped.code]).to.deep.equal([503, 'client_gone']);
    expect(gate.waiting, 'it left the queue while the thread was still busy').to.equal(1);
    expect(gate.hashingSeconds(1), 'no hash timed: the measured speed is as it was').to.equal(speed);
    running.finish();
    expect(await Promise.all([first, staying])).to.deep.equal(['hashed', 'staying']);
    expect(ran).to.deep.equal(['staying']);
    expect(gate.waiting).to.equal(0);
    // The next hash takes the free thread at once: no thread was lost to the dropped one.
    expect(await gate.run(async () => 'next')).to.equal('next');
    expect(gate.busy(), 'a dropped hash is no refusal').to.equal(undefined);
  });

  it('refuses a hash whose client has already gone, even with a thread free, before any work', async function () {
    const gate = new SlowHashGate(1, 10);
    const left = new AbortController();
    left.abort();
    expect(() => gate.admit(Infinity, left.signal)).to.throw(PushRefused);
    let ran = false;
    const refused = await refusalOf(() =>
      gate.run(async () => {
        ran = true;
        return 'hashed';
      }, Infinity, left.signal),
    );
    expect([refused.code, ran, gate.waiting, gate.busy()]).to.deep.equal(['client_gone', false, 0, undefined]);
  });

  it('a busy time ends when the last hash waiting is dropped, its client gone, though the threads still work', async function () {
    const gate = new SlowHashGate(1, 1, 60_000);
    const running = heldHash();
    const first = gate.run(() => running.promise);
    const leaving = new AbortController();
    const gone = gate.run(() => Promise.resolve('hashed'), Infinity, leaving.signal);
    await refusalOf(() => gate.run(() => Promise.resolve('hashed')));
    expect(gate.busy()?.to, 'busy while it waits').to.be.within(Date.now() / 1000 - 0.05, Date.now() / 1000 + 0.01);
    leaving.abort();
    await refusalOf(() => gone);
    const ended = gate.busy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gate.busy(), 'over once nothing waited').to.deep.equal(ended);
    running.finish();
    await first;
    expect(gate.busy()).to.deep.equal(ended);
  });

  it('uses half of UV_THREADPOOL_SIZE (libuv: 4 unless set to 1–1024)', function () {
    expect(threadPoolSize({})).to.equal(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '16' })).to.equal(16);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '0' })).to.equal(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: 'many' })).to.equal(4);
    expect(new SlowHashGate().concurrency).to.equal(Math.max(1, Math.floor(threadPoolSize() / 2)));
  });

  it('keeps a thread free for other work during a storm of real token hashes (a quote check is not held behind them)', async function () {
    this.timeout(120_000);
    const gate = new SlowHashGate();
    expect(gate.concurrency).to.be.below(threadPoolSize());
    const finished: string[] = [];
    const storm = Array.from({ length: 8 }, (_, i) =>
      gate.run(() => hashTokenSecret(`secret-${i}`, 200_000)).then(() => {
        finished.push(`hash ${i}`);
      }),
    );
    // Any job on libuv's pool stands for the quote's signature check (crypto.verify with a callback).
    const otherWork = new Promise<void>((resolve, reject) => {
      pbkdf2('x', 'salt', 1, 32, 'sha256', (error) => (error === null ? resolve() : reject(error)));
    }).then(() => {
      finished.push('other work');
    });
    await Promise.all([...storm, otherWork]);
    // Without the gate the pool's queue is first come, first served: the other work waited for every
    // hash queued before it (four here, behind the four running).
    expect(finished.indexOf('other work')).to.be.below(2);
  });

  describe('in PushSessions', function () {
    let session: PushSession;
    let repository: PushSessionRepository;

    beforeEach(async function () {
      session = await authenticatedPushSession(AGENT, 'the-secret', 1_000);
      repository = { findSession: async (id: string) => (id === session.sessionId ? session : undefined) } as unknown as PushSessionRepository;
    });

    it('a token that needs its slow check while the gate is full is 503 (try again), not 401, and spends none of its session\'s 5 checks a minute', async function () {
      const gate = new SlowHashGate(1, 0);
      const sessions = new PushSessions(repository, { find: async () => undefined } as unknown as VerifierAgentRepository, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: 1_000, slowHashes: gate, now: () => Date.now() });
      const occupying = heldHash();
      const held = gate.run(() => occupying.promise);
      for (let i = 0; i < 6; i += 1) {
        const refused = await refusalOf(() => sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`));
        expect(refused.status).to.equal(503);
      }
      occupying.finish();
      await held;
      const accepted = await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`);
      expect(accepted.sessionId).to.equal(session.sessionId);
    });

    /** The agent's stored row as `find` reads it: attesting by push to this verifier, last attested a second ago, unless changed. */
    function storedAgent(change: Partial<VerifierAgentRecord> = {}, state: Partial<AgentAttestationState> = {}): VerifierAgentRecord {
      const now = Date.now() / 1000;
      return { agentId: AGENT, verifierId: 'default', attestationMode: 'push', enrolledAt: now - 100, state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: now - 1, ...state }, ...change } as unknown as VerifierAgentRecord;
    }

    function sessionsReading(find: () => Promise<VerifierAgentRecord | undefined>, gate: SlowHashGate): PushSessions {
      return new PushSessions(repository, { find } as unknown as VerifierAgentRepository, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: 1_000, slowHashes: gate, now: () => Date.now() });
    }

    it('a token\'s slow check waits by its agent\'s silence deadline as its stored row gives it: ahead of an agent further from its own, at the back once not attesting here', async function () {
      for (const [stored, admitted] of [
        [storedAgent(), true],
        [storedAgent({}, { operationalState: OperationalState.FAILED }), false],
        [storedAgent({ verifierId: 'another' }), false],
        [storedAgent({ attestationMode: 'pull' }), false],
        [undefined, false],
      ] as const) {
        const gate = new SlowHashGate(1, 1);
        const running = heldHash();
        const first = gate.run(() => running.promise, 0);
        const later = gate.run(() => Promise.resolve('later'), Date.now() / 1000 + 3600);
        const checked = sessionsReading(async () => stored, gate).authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`);
        const outcome = (work: Promise<unknown>) => work.then(() => 'done', (e: unknown) => (e instanceof PushRefused ? e.status : e));
        const outcomes = Promise.all([outcome(checked), outcome(later)]);
        // The row read, the check is at the gate (refused, or in the place of the later hash).
        await new Promise((resolve) => setImmediate(resolve));
        running.finish();
        await first;
        const which = `${stored?.state.operationalState} ${stored?.verifierId} ${stored?.attestationMode}`;
        expect(await outcomes, which).to.deep.equal(admitted ? ['done', 503] : [503, 'done']);
      }
    });

    it('a token\'s slow check whose agent row cannot be read fails with the read, before the gate: nothing queued, no busy time', async function () {
      const gate = new SlowHashGate(1, 1);
      const down = new Error('the database is down');
      const sessions = sessionsReading(() => Promise.reject(down), gate);
      const error = await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.equal(down);
      expect([gate.waiting, gate.busy()]).to.deep.equal([0, undefined]);
    });
  });
});
