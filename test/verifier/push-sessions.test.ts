import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { PushSession, PushSessionRepository } from '../../lib/verifier/push/push-session-repository.js';
import { PushRefused } from '../../lib/verifier/push/push-reply.js';
import { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import { authenticatedPushSession } from './helpers/authenticated-push-session.js';
import { hashTokenSecret } from '../../lib/verifier/push/token-hash.js';
import type { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00001';
const ITERATIONS = 1_000;

describe('push sessions: bearer tokens remembered per session', function () {
  let reads: number;
  let agentReads: number;
  let session: PushSession;
  let sessions: PushSessions;

  beforeEach(async function () {
    reads = 0;
    agentReads = 0;
    session = await authenticatedPushSession(AGENT, 'the-secret', ITERATIONS);
    const repository = {
      findSession: async (id: string) => {
        reads += 1;
        return id === session.sessionId ? session : undefined;
      },
    } as unknown as PushSessionRepository;
    const agents = {
      find: async () => {
        agentReads += 1;
        return undefined;
      },
    } as unknown as VerifierAgentRepository;
    sessions = new PushSessions(repository, agents, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: ITERATIONS, now: () => Date.now() });
  });

  async function refusal(authorization: string): Promise<PushRefused> {
    const error = await sessions.authenticate(AGENT, authorization).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(PushRefused);
    return error as PushRefused;
  }

  it('a token whose session id is not a UUID is 401 without a read (session_id is a uuid column)', async function () {
    expect((await refusal(`Bearer ${'-'.repeat(36)}.the-secret`)).status).to.equal(401);
    expect((await refusal(`Bearer ${session.sessionId.toUpperCase()}.the-secret`)).status).to.equal(401);
    expect(reads).to.equal(0);
  });

  it('the sweep deletes only sessions lapsed one more challenge lifetime ago, so a late proof is still answered 200 "fail", not 404', async function () {
    let before: Date | undefined;
    const repository = {
      deleteLapsedSessions: async (cutoff: Date) => {
        before = cutoff;
        return 0;
      },
    } as unknown as PushSessionRepository;
    const sweeper = new PushSessions(repository, { find: async () => undefined } as unknown as VerifierAgentRepository, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: ITERATIONS, now: () => Date.now() });
    const now = new Date();
    await sweeper.sweep(now);
    expect(before?.getTime()).to.equal(now.getTime() - 60_000);
  });

  it('checks a token against its slow hash once, then answers from memory', async function () {
    await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`);
    await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`);
    expect(reads).to.equal(1);
  });

  it('makes a client-gone signal for a slow check only, not for a remembered token (a close listener per request saved)', async function () {
    let made = 0;
    const clientGone = (): AbortSignal => {
      made += 1;
      return new AbortController().signal;
    };
    const token = `Bearer ${session.sessionId}.the-secret`;
    const start = Date.now();
    await sessions.authenticate(AGENT, token, clientGone, new Date(start));
    expect(made, 'the slow check watches its client').to.equal(1);
    await sessions.authenticate(AGENT, token, clientGone, new Date(start + 1_000));
    await sessions.authenticate(AGENT, token, clientGone, new Date(start + 31_000));
    expect(made, 'a remembered token, read again or not, needs no watch').to.equal(1);
  });

  it('reads the session of a remembered token again after 30 s: a token whose session was deleted (agent deleted or re-enrolled) is then 401', async function () {
    const token = `Bearer ${session.sessionId}.the-secret`;
    const start = Date.now();
    await sessions.authenticate(AGENT, token, undefined, new Date(start));
    await sessions.authenticate(AGENT, token, undefined, new Date(start + 29_000));
    expect(reads).to.equal(1);
    await sessions.authenticate(AGENT, token, undefined, new Date(start + 31_000));
    expect(reads).to.equal(2);
    session = { ...session, sessionId: randomUUID() };
    const error = await sessions.authenticate(AGENT, token, undefined, new Date(start + 62_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(PushRefused);
    expect((error as PushRefused).status).to.equal(401);
    expect(reads).to.equal(3);
  });

  it('remembers 20 000 tokens: a flood of valid sessions pushes out the least recently used, which is checked the slow way again', async function () {
    this.timeout(60_000);
    // One PBKDF2 iteration: 20 001 slow checks, each of a session of its own.
    const token = await hashTokenSecret('the-secret', 1);
    const stored = new Map<string, PushSession>();
    for (let i = 0; i <= 20_000; i += 1) {
      const id = randomUUID();
      stored.set(id, { ...session, sessionId: id, token });
    }
    let floodReads = 0;
    const repository = {
      findSession: async (id: string) => {
        floodReads += 1;
        return stored.get(id);
      },
    } as unknown as PushSessionRepository;
    const bounded = new PushSessions(repository, { find: async () => undefined } as unknown as VerifierAgentRepository, { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, hashIterations: 1, now: () => Date.now() });
    const [kept, ...flood] = [...stored.keys()];
    const use = (id: string | undefined) => bounded.authenticate(AGENT, `Bearer ${id}.the-secret`);
    await use(kept);
    for (let i = 0; i < flood.length; i += 1) {
      await use(flood[i]);
      // The agent that keeps attesting stays remembered through the flood (no read for it).
      if (i % 5_000 === 0) await use(kept);
    }
    expect(floodReads, 'one slow check per session').to.equal(20_001);
    await use(kept);
    for (const id of flood.slice(1)) await use(id);
    expect(floodReads, 'the 20 000 most recently used are remembered').to.equal(20_001);
    await use(flood[0]);
    expect(floodReads, 'the first of the flood was dropped: read and checked again').to.equal(20_002);
  });

  it('another secret for a session whose token is remembered is 401 without a read or a slow hash', async function () {
    await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`);
    const refused = await refusal(`Bearer ${session.sessionId}.another-secret`);
    expect([refused.status, refused.code]).to.deep.equal([401, 'invalid_token']);
    expect(reads).to.equal(1);
    // The right token still works.
    expect((await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`)).sessionId).to.equal(session.sessionId);
  });

  it('a wrong secret for a session not remembered is checked against the stored hash: 401', async function () {
    const refused = await refusal(`Bearer ${session.sessionId}.another-secret`);
    expect([refused.status, refused.code]).to.deep.equal([401, 'invalid_token']);
    expect(reads).to.equal(1);
  });

  it('a session is checked the slow way at most 5 times a minute, then refused as invalid (401: the agent opens a new session)', async function () {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      expect((await refusal(`Bearer ${session.sessionId}.guess-${attempt}`)).detail).to.equal('the session token is not valid for this agent');
    }
    const throttled = await refusal(`Bearer ${session.sessionId}.guess-5`);
    expect([throttled.status, throttled.code, throttled.detail]).to.deep.equal([401, 'invalid_token', 'too many token checks for this session: open a new session']);
    expect(throttled.retryAfter, 'nothing to wait for: a new session is the way back').to.equal(undefined);
    expect([reads, agentReads], 'the five checks read the session and the agent row; the sixth reads neither').to.deep.equal([5, 5]);
    const later = new Date(Date.now() + 61_000);
    expect((await sessions.authenticate(AGENT, `Bearer ${session.sessionId}.the-secret`, undefined, later)).sessionId, 'a minute later the session checks again').to.equal(session.sessionId);
  });
});
