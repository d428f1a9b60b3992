import { request as httpsRequest } from 'node:https';
import { expect } from 'chai';
import { MAX_WAITING_QUOTES } from '../../lib/agent/agent-quoter.js';
import { ServiceBusyError } from '../../lib/http/http-errors.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { parseQuoteString } from '../../lib/tpm/quote-string.js';
import { verifyQuote } from '../../lib/tpm/verify-quote.js';
import type { QuoteRequest, QuoteResult } from '../../lib/tpm-access/tpm-port.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { createSoftwareAgent, disposeSharedNodeKey, type SoftwareAgent } from './helpers/software-agent.js';

/** Holds every TPM quote of `agent` until `release()`; `nonces` are the quotes that reached the TPM, in order. */
function holdQuotes(agent: SoftwareAgent): { nonces: string[]; release: () => void; restore: () => void } {
  const tpm = agent.tpm as { quote: (request: QuoteRequest) => Promise<QuoteResult> };
  const original = tpm.quote;
  const nonces: string[] = [];
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  tpm.quote = async (request) => {
    nonces.push(Buffer.from(request.nonce).toString('ascii'));
    await held;
    return original.call(agent.tpm, request);
  };
  return { nonces, release: () => release(), restore: () => (tpm.quote = original) };
}

const settledWithin = <T>(promise: Promise<T>, ms: number): Promise<'settled' | 'pending'> =>
  Promise.race([promise.then(() => 'settled' as const, () => 'settled' as const), new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);

/** `GET path` over mTLS with the tenant's certificate; resolves with the status, or 'closed' when `cut` (once it resolves) closed it first. */
function mtlsGet(url: string, path: string, cut?: Promise<void>): Promise<number | 'closed'> {
  const tls = tlsFixture();
  return new Promise((resolve) => {
    const call = httpsRequest(`${url}${path}`, { method: 'GET', ca: tls.agent.certPem, cert: tls.client.certPem, key: tls.client.keyPem, checkServerIdentity: () => undefined, agent: false }, (reply) => {
      reply.resume();
      reply.on('end', () => resolve(reply.statusCode ?? 0));
    });
    call.on('error', () => resolve('closed'));
    call.on('close', () => resolve('closed'));
    void cut?.then(() => call.destroy());
    call.end();
  });
}

/** Quotes waiting behind the running one in `agent`'s quoter (its private turn limiter, read for the test's sequencing only). */
function waitingQuotes(agent: SoftwareAgent): number {
  return (agent.context.quoter as unknown as { tpmTurns: { queued: number } }).tpmTurns.queued;
}

/** Waits until `agent`'s quoter holds `count` waiting quotes (a stalled host may take seconds to get there). */
function untilWaiting(agent: SoftwareAgent, count: number): Promise<void> {
  return pollUntil({ timeoutMs: 20_000, intervalMs: 10 }, `${count} quotes waiting`, () => Promise.resolve(waitingQuotes(agent) === count));
}

/**
 * The quoter queued every quote without bound, and ran a queued quote whose client had left: a burst
 * of quote requests (or a stalled TPM) held a verifier's fresh quote behind stale ones past its timeout.
 */
describe('agent quotes: a bounded queue that skips quotes nobody waits for', function () {
  this.timeout(60_000);
  let agent: SoftwareAgent;

  before(async function () {
    agent = await createSoftwareAgent();
  });
  after(async function () {
    await agent.dispose();
    await disposeSharedNodeKey();
  });

  it(`while one quote holds the TPM, ${MAX_WAITING_QUOTES} wait and the next is refused at once (ERR_AGENT_BUSY, 500: Keylime retries it); the waiting ones still complete, each with its PCR 16 binding`, async function () {
    const hold = holdQuotes(agent);
    try {
      const quoter = agent.context.quoter;
      const accepted = Array.from({ length: MAX_WAITING_QUOTES + 1 }, (_, i) => quoter.quote(`nonce${i}`, [16]));
      const refused = quoter.quote('late', [16]);
      // Held, the TPM answers nothing until released below: 10 s leaves room for a CI host that stalls this process.
      expect(await settledWithin(refused, 10_000)).to.equal('settled');
      const error = await refused.then(() => undefined, (thrown: unknown) => thrown);
      expect(error).to.be.instanceOf(ServiceBusyError);
      expect((error as ServiceBusyError).code).to.equal('ERR_AGENT_BUSY');
      expect((error as ServiceBusyError).httpStatus).to.equal(500);
      hold.release();
      const quotes = await Promise.all(accepted);
      expect(hold.nonces).to.deep.equal(accepted.map((_, i) => `nonce${i}`));
      quotes.forEach((quote, i) => {
        const verdict = verifyQuote({ akPublic: agent.ak.akPublic, ...parseQuoteString(quote), nonce: Buffer.from(`nonce${i}`, 'ascii'), hashAlg: 'sha256' });
        expect(verdict.valid, `quote ${i}`).to.equal(true);
      });
    } finally {
      hold.release();
      hold.restore();
    }
  });

  it('a waiting quote whose request was given up leaves the queue without reaching the TPM', async function () {
    const hold = holdQuotes(agent);
    try {
      const quoter = agent.context.quoter;
      const first = quoter.quote('first', [16]);
      const leaving = new AbortController();
      const abandoned = quoter.quote('abandoned', [16], leaving.signal);
      const fresh = quoter.quote('fresh', [16]);
      leaving.abort();
      expect(await abandoned.then(() => 'quoted', (error: unknown) => (error as ServiceBusyError).code)).to.equal('ERR_AGENT_BUSY');
      hold.release();
      await Promise.all([first, fresh]);
      expect(hold.nonces).to.deep.equal(['first', 'fresh']);
    } finally {
      hold.release();
      hold.restore();
    }
  });

  it('through the routes: the busy reply is 500 with Retry-After in the envelope, and a quote whose client disconnected is never made', async function () {
    const hold = holdQuotes(agent);
    const listening = await agent.service.listen({ port: 0 });
    try {
      const running = mtlsGet(listening.url, '/v2.6/quotes/identity?nonce=running');
      while (hold.nonces.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      // Each step waits for the queue to show the one before it (fixed waits of 200-300 ms lost that race on a stalled host).
      let cutGone = (): void => {};
      const gone = mtlsGet(listening.url, '/v2.6/quotes/integrity?nonce=gone&mask=0x400&partial=1', new Promise<void>((resolve) => (cutGone = resolve)));
      await untilWaiting(agent, 1);
      const waiting = Array.from({ length: MAX_WAITING_QUOTES - 1 }, (_, i) => agent.service.app.inject({ method: 'GET', url: `/v2.6/quotes/identity?nonce=waiting${i}` }));
      await untilWaiting(agent, MAX_WAITING_QUOTES);
      cutGone();
      expect(await gone).to.equal('closed');
      // The disconnected request left its place: one more fits before the queue is full.
      await untilWaiting(agent, MAX_WAITING_QUOTES - 1);
      const last = agent.service.app.inject({ method: 'GET', url: '/v2.6/quotes/integrity?nonce=last&mask=0x400&partial=1' });
      await untilWaiting(agent, MAX_WAITING_QUOTES);
      const busy = await agent.service.app.inject({ method: 'GET', url: '/v2.6/quotes/integrity?nonce=busy&mask=0x400&partial=1' });
      expect(busy.statusCode).to.equal(500);
      expect(busy.headers['retry-after']).to.equal('1');
      expect(busy.json()).to.deep.equal({ code: 500, status: 'Internal Server Error', results: {} });
      hold.release();
      expect(await running).to.equal(200);
      expect((await Promise.all([...waiting, last])).map((reply) => reply.statusCode)).to.deep.equal(Array.from({ length: MAX_WAITING_QUOTES }, () => 200));
      expect(hold.nonces).to.not.include('gone');
      expect(hold.nonces).to.have.length(MAX_WAITING_QUOTES + 1);
    } finally {
      hold.release();
      hold.restore();
    }
  });
});
