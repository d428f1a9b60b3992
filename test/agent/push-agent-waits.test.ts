import { expect } from 'chai';
import { pino } from 'pino';
import { MemoryImaList } from '../../lib/agent/memory-ima-list.js';
import { PushAgent, type PushBackoff } from '../../lib/agent/push/push-agent.js';
import { parseRetryAfter } from '../../lib/agent/push/retry-after.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../lib/tpm-access/tpm-port.js';
import { sendJson, startScriptedVerifier, type Override, type ScriptedVerifier } from './helpers/scripted-verifier.js';

const isCapabilities = (url: string): boolean => url.endsWith('/attestations');
const isEvidence = (url: string): boolean => url.includes('/attestations/');
const isSessionOpen = (url: string): boolean => url === '/v3.0/sessions';

/** Milliseconds between the first two requests `method` `test` matches, as the verifier received them. */
function gapMs(verifier: ScriptedVerifier, method: string, test: (url: string) => boolean): number {
  const [first, second] = verifier.seen.filter((s) => s.method === method && test(s.url));
  return (second?.at ?? Number.NaN) - (first?.at ?? Number.NaN);
}

/** A wait of at least 1 s, less what the timer's millisecond rounding may take off it. */
const AT_LEAST_1_S = 950;

/** Answers every capabilities POST with `status` and these headers. */
function refuseCapabilities(status: number, headers: Record<string, string>): Override {
  return (req, res) => {
    if (req.method !== 'POST' || !isCapabilities(req.url ?? '')) return false;
    sendJson(res, status, { errors: [] }, headers);
    return true;
  };
}

describe('push agent: waits, stop, re-authentication and Location against a scripted verifier', function () {
  this.timeout(30_000);
  let tpm: SoftwareTpm;
  let ak: AkInfo;
  const verifiers: ScriptedVerifier[] = [];

  before(async function () {
    tpm = await createSoftwareTpm();
    await tpm.ensureEk();
    ak = await tpm.ensureAk('sha256');
  });
  afterEach(async function () {
    for (const verifier of verifiers.splice(0)) await verifier.close();
  });

  async function verifierWith(override?: Override, options?: { nextSeconds?: number; location?: string }): Promise<ScriptedVerifier> {
    const verifier = await startScriptedVerifier(override, options);
    verifiers.push(verifier);
    return verifier;
  }

  function agentFor(url: string, backoff: Partial<PushBackoff> = { initialDelayMs: 200, maxDelayMs: 1000 }): PushAgent {
    const list = new MemoryImaList();
    list.append('10 aa ima-ng sha256:bb boot_aggregate\n');
    return new PushAgent({
      uuid: 'node-1',
      verifierUrl: url,
      tpm,
      ak,
      logs: { imaList: async (n) => list.slice(n), imaLineCount: async () => list.lineCount(), bootLogBase64: async () => undefined },
      bootTime: new Date(0),
      backoff,
      log: pino({ level: 'silent' }),
    });
  }

  /**
   * Runs `agent` until `done` holds, then `holdMs` more, then stops it. Waiting for the event rather than a
   * fixed time: the session and capabilities come first, and a loaded CI host can stall this process for seconds.
   */
  async function runUntil(agent: PushAgent, what: string, done: () => boolean, holdMs = 0): Promise<void> {
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    try {
      await pollUntil({ timeoutMs: 20_000, intervalMs: 20 }, what, async () => done());
      await new Promise((resolve) => setTimeout(resolve, holdMs));
    } finally {
      stop.abort();
      await running;
    }
  }

  it('a seconds_to_next_attestation of ~35 days (past setTimeout\'s 2^31−1 ms) waits, not a hot loop', async function () {
    const verifier = await verifierWith(undefined, { nextSeconds: 3_000_000 });
    await runUntil(agentFor(verifier.url), 'the first evidence PATCH', () => verifier.count('PATCH', isEvidence) >= 1, 1500);
    expect(verifier.count('PATCH', isEvidence), 'evidence PATCHes in the 1.5 s after the first').to.equal(1);
  });

  it('a seconds_to_next_attestation of 0 waits at least 1 s', async function () {
    const verifier = await verifierWith(undefined, { nextSeconds: 0 });
    await runUntil(agentFor(verifier.url), 'two evidence PATCHes', () => verifier.count('PATCH', isEvidence) >= 2);
    // A lower bound only: a stalled host makes the gap longer, never shorter.
    expect(gapMs(verifier, 'PATCH', isEvidence), 'ms between the first two evidence PATCHes').to.be.at.least(AT_LEAST_1_S);
  });

  it('a Retry-After of ~35 days on 429 waits, not a hot loop', async function () {
    const verifier = await verifierWith(refuseCapabilities(429, { 'retry-after': '3000000' }));
    await runUntil(agentFor(verifier.url), 'the first capabilities POST', () => verifier.count('POST', isCapabilities) >= 1, 1500);
    expect(verifier.count('POST', isCapabilities), 'capabilities POSTs in the 1.5 s after the first, with a 200 ms back-off').to.equal(1);
  });

  it('a Retry-After given as an HTTP-date is honoured', async function () {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const verifier = await verifierWith(refuseCapabilities(503, { 'retry-after': inAMinute }));
    await runUntil(agentFor(verifier.url), 'the first capabilities POST', () => verifier.count('POST', isCapabilities) >= 1, 1500);
    expect(verifier.count('POST', isCapabilities), 'capabilities POSTs in the 1.5 s after the first, with a 200 ms back-off').to.equal(1);
  });

  for (const value of ['', '0', 'soon']) {
    it(`a Retry-After of ${JSON.stringify(value)} on 503 is no immediate retry`, async function () {
      const verifier = await verifierWith(refuseCapabilities(503, { 'retry-after': value }));
      await runUntil(agentFor(verifier.url, { initialDelayMs: 1000, maxDelayMs: 1000 }), 'two capabilities POSTs', () => verifier.count('POST', isCapabilities) >= 2);
      // A lower bound only: a stalled host makes the gap longer, never shorter.
      expect(gapMs(verifier, 'POST', isCapabilities), 'ms between the first two capabilities POSTs, with a 1 s back-off').to.be.at.least(AT_LEAST_1_S);
    });
  }

  it('a back-off option of 0 still waits at least 1 s between failed attempts (it was a hot loop)', async function () {
    const verifier = await verifierWith(refuseCapabilities(500, {}));
    await runUntil(agentFor(verifier.url, { initialDelayMs: 0, maxDelayMs: 0 }), 'two capabilities POSTs', () => verifier.count('POST', isCapabilities) >= 2);
    // A lower bound only: a stalled host makes the gap longer, never shorter.
    expect(gapMs(verifier, 'POST', isCapabilities), 'ms between the first two capabilities POSTs').to.be.at.least(AT_LEAST_1_S);
  });

  it('a Retry-After is never cut short by the jitter', async function () {
    const verifier = await verifierWith(refuseCapabilities(503, { 'retry-after': '2' }));
    await runUntil(agentFor(verifier.url, { initialDelayMs: 1000, maxDelayMs: 1000 }), 'two capabilities POSTs', () => verifier.count('POST', isCapabilities) >= 2);
    expect(gapMs(verifier, 'POST', isCapabilities), 'ms between the first two capabilities POSTs').to.be.at.least(2 * AT_LEAST_1_S);
  });

  it('stops at once while the verifier never answers the evidence PATCH (not at the 30 s request timeout)', async function () {
    const verifier = await verifierWith((req) => req.method === 'PATCH' && isEvidence(req.url ?? ''));
    const stop = new AbortController();
    const running = agentFor(verifier.url).run(stop.signal);
    // The session and capabilities come first: on a loaded machine they can take seconds.
    const deadline = Date.now() + 15_000;
    while (verifier.count('PATCH', isEvidence) === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(verifier.count('PATCH', isEvidence), 'the PATCH left before the stop').to.equal(1);
    const started = Date.now();
    stop.abort();
    await running;
    // The PATCH's request timeout is 30 s; 8 s leaves room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started, 'ms from the stop to run() resolving').to.be.below(8000);
  });

  it('a 401 opens a new session at once; a second 401 in a row backs off', async function () {
    const verifier = await verifierWith(refuseCapabilities(401, {}));
    // A 60 s back-off: a stall of the host cannot run it out within the test, and a first 401 that backed off
    // instead of opening a session at once never reaches the second capabilities POST.
    await runUntil(agentFor(verifier.url, { initialDelayMs: 60_000, maxDelayMs: 60_000 }), 'two capabilities POSTs', () => verifier.count('POST', isCapabilities) >= 2, 1000);
    expect(verifier.count('POST', isSessionOpen), 'sessions opened (the first, one after the 401, none after the second)').to.equal(2);
    expect(verifier.count('POST', isCapabilities)).to.equal(2);
  });

  it('a Location on another origin gets neither the token nor the evidence, and counts as a failure', async function () {
    const other = await verifierWith();
    const verifier = await verifierWith(undefined, { nextSeconds: 1000, location: `${other.url}/v3.0/agents/node-1/attestations/0` });
    await runUntil(agentFor(verifier.url, { initialDelayMs: 3000, maxDelayMs: 3000 }), 'the capabilities POST', () => verifier.count('POST', isCapabilities) >= 1, 800);
    expect(other.seen).to.deep.equal([]);
    expect(verifier.count('PATCH', isEvidence), 'evidence sent to the verifier instead').to.equal(0);
  });

  it('a Location on the verifier\'s origin, absolute or a path, is where the evidence goes', async function () {
    const byPath = await verifierWith(undefined, { nextSeconds: 1000, location: '/v3.0/agents/node-1/attestations/7' });
    await runUntil(agentFor(byPath.url), 'the evidence PATCH', () => byPath.count('PATCH', isEvidence) >= 1);
    const relative = await verifierWith(undefined, { nextSeconds: 1000, location: 'attestations/8' });
    await runUntil(agentFor(relative.url), 'the evidence PATCH', () => relative.count('PATCH', isEvidence) >= 1);
    expect(byPath.seen.filter((s) => s.method === 'PATCH' && isEvidence(s.url)).map((s) => s.url)).to.deep.equal(['/v3.0/agents/node-1/attestations/7']);
    expect(relative.seen.filter((s) => s.method === 'PATCH' && isEvidence(s.url)).map((s) => s.url)).to.deep.equal(['/v3.0/agents/node-1/attestations/8']);
  });
});

describe('push agent: Retry-After (RFC 9110 §10.2.3)', function () {
  const now = Date.parse('2026-12-05T12:00:00Z');
  it('reads delay-seconds and an HTTP-date; a past date is 0', function () {
    expect(parseRetryAfter('120', now)).to.equal(120);
    expect(parseRetryAfter('Sat, 05 Dec 2026 12:01:30 GMT', now)).to.equal(90);
    expect(parseRetryAfter('Sat, 05 Dec 2026 11:00:00 GMT', now)).to.equal(0);
  });
  it('refuses empty, negative, fractional and other text', function () {
    for (const value of [undefined, '', ' ', '-1', '1.5', '1e3', 'soon', '2026-12-05T12:01:00Z']) {
      expect(parseRetryAfter(value, now), JSON.stringify(value)).to.equal(undefined);
    }
  });
});
