import { expect } from 'chai';
import { pino } from 'pino';
import { MemoryImaList } from '../../lib/agent/memory-ima-list.js';
import { PushAgent, type PushBackoff } from '../../lib/agent/push/push-agent.js';
import { parseRetryAfter } from '../../lib/agent/push/retry-after.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../lib/tpm-access/tpm-port.js';
import { sendJson, startScriptedVerifier, type Override, type ScriptedVerifier } from './helpers/scripted-verifier.js';

const isCapabilities = (url: string): boolean => url.endsWith('/attestations');
const isEvidence = (url: string): boolean => url.includes('/attestations/');
const isSessionOpen = (url: string): boolean => url === '/v3.0/sessions';

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

  async function runFor(agent: PushAgent, ms: number): Promise<void> {
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    await new Promise((resolve) => setTimeout(resolve, ms));
    stop.abort();
    await running;
  }

  it('a seconds_to_next_attestation of ~35 days (past setTimeout\'s 2^31−1 ms) waits, not a hot loop', async function () {
    const verifier = await verifierWith(undefined, { nextSeconds: 3_000_000 });
    await runFor(agentFor(verifier.url), 1500);
    expect(verifier.count('PATCH', isEvidence), 'evidence PATCHes in 1.5 s').to.equal(1);
  });

  it('a seconds_to_next_attestation of 0 waits at least 1 s', async function () {
    const verifier = await verifierWith(undefined, { nextSeconds: 0 });
    await runFor(agentFor(verifier.url), 1500);
    expect(verifier.count('PATCH', isEvidence), 'evidence PATCHes in 1.5 s').to.equal(2);
  });

  it('a Retry-After of ~35 days on 429 waits, not a hot loop', async function () {
    const verifier = await verifierWith(refuseCapabilities(429, { 'retry-after': '3000000' }));
    await runFor(agentFor(verifier.url), 1500);
    expect(verifier.count('POST', isCapabilities), 'capabilities POSTs in 1.5 s').to.equal(1);
  });

  it('a Retry-After given as an HTTP-date is honoured', async function () {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const verifier = await verifierWith(refuseCapabilities(503, { 'retry-after': inAMinute }));
    await runFor(agentFor(verifier.url), 1500);
    expect(verifier.count('POST', isCapabilities), 'capabilities POSTs in 1.5 s with a 200 ms back-off').to.equal(1);
  });

  for (const value of ['', '0', 'soon']) {
    it(`a Retry-After of ${JSON.stringify(value)} on 503 is no immediate retry`, async function () {
      const verifier = await verifierWith(refuseCapabilities(503, { 'retry-after': value }));
      await runFor(agentFor(verifier.url, { initialDelayMs: 1000, maxDelayMs: 1000 }), 1500);
      expect(verifier.count('POST', isCapabilities), 'capabilities POSTs in 1.5 s with a 1 s back-off').to.equal(2);
    });
  }

  it('stops within 1 s while the verifier never answers the evidence PATCH', async function () {
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
    expect(Date.now() - started, 'ms from the stop to run() resolving').to.be.below(1000);
  });

  it('a 401 opens a new session at once; a second 401 in a row backs off', async function () {
    const verifier = await verifierWith(refuseCapabilities(401, {}));
    await runFor(agentFor(verifier.url, { initialDelayMs: 3000, maxDelayMs: 3000 }), 2000);
    expect(verifier.count('POST', isSessionOpen), 'sessions opened in 2 s (the first, one after the 401, none after the second)').to.equal(2);
    expect(verifier.count('POST', isCapabilities)).to.equal(2);
  });

  it('a Location on another origin gets neither the token nor the evidence, and counts as a failure', async function () {
    const other = await verifierWith();
    const verifier = await verifierWith(undefined, { nextSeconds: 1000, location: `${other.url}/v3.0/agents/node-1/attestations/0` });
    await runFor(agentFor(verifier.url, { initialDelayMs: 3000, maxDelayMs: 3000 }), 800);
    expect(other.seen).to.deep.equal([]);
    expect(verifier.count('PATCH', isEvidence), 'evidence sent to the verifier instead').to.equal(0);
  });

  it('a Location on the verifier\'s origin, absolute or a path, is where the evidence goes', async function () {
    const byPath = await verifierWith(undefined, { nextSeconds: 1000, location: '/v3.0/agents/node-1/attestations/7' });
    await runFor(agentFor(byPath.url), 800);
    const relative = await verifierWith(undefined, { nextSeconds: 1000, location: 'attestations/8' });
    await runFor(agentFor(relative.url), 800);
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
