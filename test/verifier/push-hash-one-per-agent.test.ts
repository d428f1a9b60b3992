import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PushSession, PushSessionRepository } from '../../lib/verifier/push/push-session-repository.js';
import { PushRefused } from '../../lib/verifier/push/push-reply.js';
import { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import { SlowHashGate } from '../../lib/verifier/push/slow-hash-gate.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import type { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { authenticatedPushSession } from './helpers/authenticated-push-session.js';
import { heldHash } from './helpers/held-hash.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00003';
const turn = () => new Promise((resolve) => setImmediate(resolve));
/** What a hash's promise came to: its value, or the status it was refused with. */
const outcome = (work: Promise<unknown>) => work.then((value) => value, (e: unknown) => (e instanceof PushRefused ? e.status : e));

/** A hash that records its name when it starts and then resolves to it. */
function named(name: string, started: string[]): () => Promise<string> {
  return () => {
    started.push(name);
    return Promise.resolve(name);
  };
}

describe('push sessions: an agent\'s deadline orders one of its hashes at a time (SlowHashGate)', function () {
  it('a second hash of an agent whose hash waits by its deadline waits at the back, behind a later deadline, and is the first refused', async function () {
    const gate = new SlowHashGate(1, 2);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const started: string[] = [];
    const near = outcome(gate.run(named('near', started), 100, undefined, 'near'));
    const again = outcome(gate.run(named('near again', started), 100, undefined, 'near'));
    const later = outcome(gate.run(named('later', started), 500, undefined, 'later'));
    running.finish();
    await first;
    expect(await Promise.all([near, again, later])).to.deep.equal(['near', 503, 'later']);
    expect(started).to.deep.equal(['near', 'later']);
  });

  it('for a minute after that hash started, the agent\'s next ones wait at the back; then by its deadline again', async function () {
    let nowMs = 1_000_000;
    const gate = new SlowHashGate(1, 10, 0, () => nowMs);
    const started: string[] = [];
    // Runs at once, a thread being free: its agent's turn starts now.
    await gate.run(named('first', started), 100, undefined, 'near');
    for (const [after, expected] of [
      [59_000, ['later', 'near']],
      [61_000, ['near', 'later']],
    ] as const) {
      nowMs = 1_000_000 + after;
      started.length = 0;
      const running = heldHash();
      const holding = gate.run(() => running.promise);
      const runs = [gate.run(named('near', started), 100, undefined, 'near'), gate.run(named('later', started), 500, undefined, 'later')];
      running.finish();
      await Promise.all([holding, ...runs]);
      expect(started, `${after} ms after`).to.deep.equal(expected);
    }
  });

  it('a hash refused in favour of a closer deadline gives its agent\'s turn back: its next try waits by its deadline', async function () {
    const gate = new SlowHashGate(1, 1);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const displaced = outcome(gate.run(async () => 'not run', 100, undefined, 'near'));
    const urgent = gate.run(async () => 'urgent', 50);
    expect(await displaced).to.equal(503);
    running.finish();
    await Promise.all([first, urgent]);
    const holding = heldHash();
    const held = gate.run(() => holding.promise, 0);
    const retried = outcome(gate.run(async () => 'retried', 100, undefined, 'near'));
    const later = outcome(gate.run(async () => 'later', 500, undefined, 'later'));
    holding.finish();
    await held;
    expect(await Promise.all([retried, later])).to.deep.equal(['retried', 503]);
  });

  it('a hash by deadline dropped because its client left spends the turn, as one started', async function () {
    const gate = new SlowHashGate(1, 2);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const leaving = new AbortController();
    const gone = outcome(gate.run(async () => 'not run', 100, leaving.signal, 'near'));
    leaving.abort();
    expect(await gone).to.equal(503);
    const started: string[] = [];
    const runs = [gate.run(named('near', started), 100, undefined, 'near'), gate.run(named('later', started), 500, undefined, 'later')];
    running.finish();
    await Promise.all([first, ...runs]);
    expect(started).to.deep.equal(['later', 'near']);
  });

  it('hashes without an agent keep their deadline, one after another (the callers that name none)', async function () {
    const gate = new SlowHashGate(1, 10);
    const running = heldHash();
    const first = gate.run(() => running.promise, 0);
    const started: string[] = [];
    const runs = [gate.run(named('a', started), 100), gate.run(named('b', started), 100), gate.run(named('later', started), 500)];
    running.finish();
    await Promise.all([first, ...runs]);
    expect(started).to.deep.equal(['a', 'b', 'later']);
  });

  describe('in PushSessions', function () {
    let sessions: PushSession[];
    let pushSessions: (gate: SlowHashGate) => PushSessions;

    beforeEach(async function () {
      sessions = [await authenticatedPushSession(AGENT, 'the-secret', 1_000), await authenticatedPushSession(AGENT, 'the-secret', 1_000)];
      const repository = { findSession: async (id: string) => sessions.find((s) => s.sessionId === id) } as unknown as PushSessionRepository;
      const now = Date.now() / 1000;
      const stored = { agentId: AGENT, verifierId: 'default', attestationMode: 'push', enrolledAt: now - 100, state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: now - 1 } } as unknown as VerifierAgentRecord;
      pushSessions = (gate) =>
        new PushSessions(repository, { find: async () => stored } as unknown as VerifierAgentRepository, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: 1_000, slowHashes: gate, now: () => Date.now() });
    });

    it('a second token check of the agent, while its first waits, is refused before a later deadline\'s hash, not in its place', async function () {
      const gate = new SlowHashGate(1, 2);
      const checks = pushSessions(gate);
      const running = heldHash();
      const first = gate.run(() => running.promise, 0);
      const checked = (session: PushSession) => outcome(checks.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`).then(() => 'checked'));
      const one = checked(sessions[0] as PushSession);
      // Its agent row read, the first check waits at the gate by the agent's deadline (about 9 s ahead).
      await turn();
      await turn();
      expect(gate.waiting).to.equal(1);
      const later = outcome(gate.run(async () => 'later', Date.now() / 1000 + 3600, undefined, 'another agent'));
      const two = checked(sessions[1] as PushSession);
      // Its reads done, the second check is at the gate while the thread is still held.
      await turn();
      await turn();
      running.finish();
      await first;
      expect(await Promise.all([one, two, later])).to.deep.equal(['checked', 503, 'later']);
    });
  });
});
