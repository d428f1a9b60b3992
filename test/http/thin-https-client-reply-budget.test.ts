import { createServer, type Server, type TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { ReplyBudget, UNCOUNTED_REPLY_BYTES } from '../../lib/http/reply-budget.js';
import { ThinHttpsClient } from '../../lib/http/thin-https-client.js';
import { tlsFixture } from './tls-fixture.js';

/** A counted reply: one such fits the test's budget, two do not. */
const BIG = 400 * 1024;
const BUDGET = 600 * 1024;
const ENVELOPE = JSON.stringify({ code: 200, status: 'Success', results: { pad: '' } });
/** The `pad` string of a reply of `bytes` bytes of body. */
const padOf = (bytes: number): string => 'x'.repeat(bytes - ENVELOPE.length);

/**
 * Thin clients sharing one `ReplyBudget` (the verifier's pull loop: one client per agent) against a bare
 * TLS server: a big reply is read only while the budget holds it, so several agents answering 64 MiB
 * at once are read and judged a budget at a time; the others wait with their connections paused, a
 * small reply never waits, and a reply that waits past its deadline fails alone.
 */
describe('http: thin clients sharing a reply budget', function () {
  const fixture = tlsFixture();
  let server: Server;
  let port: number;
  /** Ends the reply the server holds half-sent (`/held`). */
  let finishHeld: () => void;

  const reply = (bytes: number): Buffer => {
    const body = ENVELOPE.replace('"pad":""', `"pad":"${padOf(bytes)}"`);
    return Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 'latin1');
  };

  before(async function () {
    server = createServer({ cert: fixture.agent.certPem, key: fixture.agent.keyPem }, (socket: TLSSocket) => {
      let buffered = '';
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const path = /^GET (\S+)/.exec(buffered)?.[1];
        buffered = buffered.slice(end + 4);
        if (path === '/held') {
          const bytes = reply(BIG);
          socket.write(bytes.subarray(0, bytes.length / 2));
          finishHeld = () => socket.write(bytes.subarray(bytes.length / 2));
        } else {
          socket.write(reply(path === '/small' ? 1024 : path === '/huge' ? 2 * BUDGET : BIG));
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(function () {
    server.close();
  });

  const client = (budget: ReplyBudget, timeoutMs = 10_000): ThinHttpsClient =>
    new ThinHttpsClient({ baseUrl: `https://127.0.0.1:${port}`, tls: { pinnedServerCert: fixture.agent.certPem }, timeoutMs, replyBudget: budget });

  /** A request whose settling is recorded, so a test can see it has not settled yet. */
  const tracked = (promise: Promise<unknown>): { readonly promise: Promise<unknown>; settled: boolean } => {
    const track = { promise, settled: false };
    promise.then(
      () => (track.settled = true),
      () => (track.settled = true),
    );
    return track;
  };

  const heldBy = async (budget: ReplyBudget, bytes: number): Promise<void> => {
    for (let i = 0; i < 200 && budget.inFlight < bytes; i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(budget.inFlight).to.be.at.least(bytes);
  };

  it('reads a second big reply only once the first one is handed over; a small one at once', async function () {
    const budget = new ReplyBudget(BUDGET);
    const [first, second, third] = [client(budget), client(budget), client(budget)];
    try {
      const held = tracked(first.request('GET', '/held'));
      await heldBy(budget, BIG);
      const waiting = tracked(second.request('GET', '/big'));
      expect(await third.request('GET', '/small')).to.deep.equal({ pad: padOf(1024) });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(waiting.settled, 'the second big reply was read while the first held the budget').to.equal(false);
      expect(budget.queued).to.equal(1);
      finishHeld();
      await held.promise;
      expect(await waiting.promise).to.deep.equal({ pad: padOf(BIG) });
      expect(budget.highWater).to.be.at.most(BUDGET);
      await new Promise((resolve) => setImmediate(resolve));
      expect(budget.inFlight).to.equal(0);
    } finally {
      for (const thin of [first, second, third]) thin.close();
    }
  });

  it('holds a judged reply\'s share until its judge settles, not only the turn that handed it over (requestJudged)', async function () {
    const budget = new ReplyBudget(BUDGET);
    const [first, second] = [client(budget), client(budget)];
    try {
      let endJudging: () => void = () => undefined;
      const judging = new Promise<void>((resolve) => (endJudging = resolve));
      const judged = first.requestJudged('/big', async (results) => {
        await judging;
        return results;
      });
      await heldBy(budget, BIG);
      const waiting = tracked(second.request('GET', '/big'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(waiting.settled, 'a second big reply was read while the first was still being judged').to.equal(false);
      expect(budget.queued).to.equal(1);
      endJudging();
      expect(await judged).to.deep.equal({ pad: padOf(BIG) });
      expect(await waiting.promise).to.deep.equal({ pad: padOf(BIG) });
      await new Promise((resolve) => setImmediate(resolve));
      expect(budget.inFlight).to.equal(0);
    } finally {
      first.close();
      second.close();
    }
  });

  it('fails a reply that waits past its deadline, alone: the reply holding the budget is read, and the budget ends empty', async function () {
    const budget = new ReplyBudget(BUDGET);
    const [first, second] = [client(budget), client(budget, 300)];
    try {
      const held = first.request('GET', '/held');
      await heldBy(budget, BIG);
      const error = await second.request('GET', '/big').then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect((error as Error).message).to.include('no complete reply within 300 ms');
      expect(budget.queued).to.equal(0);
      finishHeld();
      expect(await held).to.have.property('pad');
      await new Promise((resolve) => setImmediate(resolve));
      expect(budget.inFlight).to.equal(0);
    } finally {
      first.close();
      second.close();
    }
  });

  it('reads a reply larger than the whole budget once nothing else is held', async function () {
    const budget = new ReplyBudget(BUDGET);
    const thin = client(budget);
    try {
      expect(await thin.request('GET', '/huge')).to.deep.equal({ pad: padOf(2 * BUDGET) });
      expect(budget.highWater).to.be.above(BUDGET);
    } finally {
      thin.close();
    }
  });

  it('counts no reply of at most UNCOUNTED_REPLY_BYTES', function () {
    const budget = new ReplyBudget(BUDGET);
    expect(budget.reserve(UNCOUNTED_REPLY_BYTES, () => undefined).granted).to.equal(true);
    expect(budget.inFlight).to.equal(0);
  });
});
