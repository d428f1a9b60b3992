import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { withRegistrarRetries } from '../../lib/agent/agent-enrolment.js';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';
import { startHostAgent } from '../../lib/agent/host-agent.js';
import { startPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';

const unreachable = (): ServiceUnreachableError => new ServiceUnreachableError('http://registrar', 'network', 'ECONNREFUSED');

/**
 * A plain-HTTP "registrar" for the suite that answers every request 503 (with `retryAfter` seconds when
 * given), as one whose database is away; `requestedAt` holds when each request came, `dir` a data dir.
 */
function useBusyRegistrar(prefix: string, retryAfter?: number): { dir: () => string; url: () => string; requestedAt: number[] } {
  let dir = '';
  let registrar: HttpServer | undefined;
  const requestedAt: number[] = [];
  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
    const server = createHttpServer((req, res) => {
      requestedAt.push(Date.now());
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json', ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }) });
      res.end(JSON.stringify({ code: 503, status: 'Service Unavailable', results: {} }));
    });
    registrar = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(async function () {
    registrar?.closeAllConnections();
    await new Promise((resolve) => registrar?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { dir: () => dir, url: () => `http://127.0.0.1:${(registrar?.address() as AddressInfo).port}`, requestedAt };
}

describe('agent registration: retries while the registrar is away', function () {
  it('by default gives up after 5 tries', async function () {
    let tries = 0;
    const started = Date.now();
    const error = await withRegistrarRetries({ backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, async () => {
      tries += 1;
      throw unreachable();
    }).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(tries).to.equal(5);
    // On the given 1 ms back-off (the default one waits 1+2+4+8 = 15 s); room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(8000);
  });

  it('with attempts: Infinity keeps trying on the given back-off until the registrar answers', async function () {
    let tries = 0;
    await withRegistrarRetries({ attempts: Infinity, backoff: { initialDelayMs: 1, maxDelayMs: 5 } }, async () => {
      tries += 1;
      if (tries < 12) throw unreachable();
    });
    expect(tries).to.equal(12);
  });

  it('with attempts: Infinity a failed TLS handshake is final (a wrong CA does not mend itself)', async function () {
    let tries = 0;
    const tls = new ServiceUnreachableError('https://registrar', 'tls', 'unable to verify the first certificate');
    const error = await withRegistrarRetries({ attempts: Infinity, backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, async () => {
      tries += 1;
      throw tls;
    }).catch((caught: unknown) => caught);
    expect([error, tries]).to.deep.equal([tls, 1]);
  });

  it('a refusal is final; an abort ends the wait at once with an AbortError', async function () {
    const refused = new Error('403 from the registrar');
    expect(await withRegistrarRetries({ attempts: Infinity }, () => Promise.reject(refused)).catch((caught: unknown) => caught)).to.equal(refused);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    const started = Date.now();
    const error = await withRegistrarRetries({ attempts: Infinity, backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000 }, signal: stop.signal }, () => Promise.reject(unreachable())).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).name).to.equal('AbortError');
    // The back-off is 60 s; room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(10_000);
  });
});

describe('agent registration: a registrar that answers with a fault (5xx, 429, 408) is tried again; a refusal (other 4xx) is final', function () {
  const answered = (status: number): KeylimeHttpError => new KeylimeHttpError('http://registrar/v2.1/agents/a', status, 'Service Unavailable', {});

  for (const status of [500, 502, 503, 504, 429, 408]) {
    it(`${status} is tried again until the registrar takes the registration`, async function () {
      let tries = 0;
      await withRegistrarRetries({ attempts: Infinity, backoff: { initialDelayMs: 1, maxDelayMs: 5 } }, async () => {
        tries += 1;
        if (tries < 4) throw answered(status);
      });
      expect(tries).to.equal(4);
    });
  }

  for (const status of [400, 403, 404, 409]) {
    it(`${status} is final`, async function () {
      let tries = 0;
      const refusal = answered(status);
      const error = await withRegistrarRetries({ attempts: Infinity, backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, async () => {
        tries += 1;
        throw refusal;
      }).catch((caught: unknown) => caught);
      expect([error, tries]).to.deep.equal([refusal, 1]);
    });
  }

  it('by default a fault is tried 5 times, then its error is the answer', async function () {
    let tries = 0;
    const error = await withRegistrarRetries({ backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, async () => {
      tries += 1;
      throw answered(503);
    }).catch((caught: unknown) => caught);
    expect((error as KeylimeHttpError).remoteHttpStatus).to.equal(503);
    expect(tries).to.equal(5);
  });
});

describe('push agent start: a registrar answering 503 (its database away) is tried again until stopped', function () {
  this.timeout(60_000);
  const registrar = useBusyRegistrar('ironlime-push-registrar-503-');

  it('keeps trying (it exited with the 503 after one request), and stops when its signal aborts', async function () {
    const tpm = await createSoftwareTpm();
    const stop = new AbortController();
    const start = startPushAgent(
      { dataDir: registrar.dir(), tpm: 'software', registrarUrl: registrar.url(), verifierUrl: 'http://127.0.0.1:1', backoff: { initialDelayMs: 20, maxDelayMs: 50 } },
      { tpm, signal: stop.signal },
    ).catch((caught: unknown) => caught);
    let settled = false;
    void start.then(() => (settled = true));
    // Four waits of at least 1 s (the push agent's floor): a deadline well past them for a CI host that stalls.
    const deadline = Date.now() + 40_000;
    while (registrar.requestedAt.length <= 4 && !settled && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    const error = await start;
    expect(registrar.requestedAt.length, 'registrar requests before the stop').to.be.greaterThan(4);
    expect((error as Error).name).to.equal('AbortError');
    await tpm.close();
  });
});

describe('agent registration: a registrar\'s Retry-After on 429 or 503 is waited, not cut short by a shorter back-off', function () {
  this.timeout(60_000);
  const registrar = useBusyRegistrar('ironlime-registrar-retry-after-', 3);

  it('a push agent asked to wait 3 s does (its back-off alone would try again after 1 s)', async function () {
    const tpm = await createSoftwareTpm();
    const stop = new AbortController();
    const start = startPushAgent(
      { dataDir: registrar.dir(), tpm: 'software', registrarUrl: registrar.url(), verifierUrl: 'http://127.0.0.1:1', backoff: { initialDelayMs: 0, maxDelayMs: 0 } },
      { tpm, signal: stop.signal },
    ).catch((caught: unknown) => caught);
    const deadline = Date.now() + 40_000;
    while (registrar.requestedAt.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    expect((await start as Error).name).to.equal('AbortError');
    await tpm.close();
    // A lower bound only (a stall makes the gaps longer); the first request of each try may be a GET /version.
    const gaps = registrar.requestedAt.slice(1).map((at, i) => at - (registrar.requestedAt[i] ?? at));
    expect(registrar.requestedAt.length, 'registrar requests').to.be.at.least(3);
    expect(Math.min(...gaps), 'shortest ms between two requests').to.be.at.least(2_950);
  });

  it('the wait named is kept with the bounded tries of a pull agent too', async function () {
    const busy = new KeylimeHttpError('http://registrar/v2.1/agents/a', 429, 'Too Many Requests', {}, false, '2');
    let tries = 0;
    const started = Date.now();
    await withRegistrarRetries({ backoff: { initialDelayMs: 1, maxDelayMs: 1 } }, async () => {
      tries += 1;
      if (tries < 2) throw busy;
    });
    expect(Date.now() - started, 'ms before the second try').to.be.at.least(1_950);
  });
});

describe('agent without a TPM: a stop during the registrar\'s Retry-After', function () {
  this.timeout(60_000);
  const registrar = useBusyRegistrar('ironlime-host-registrar-busy-', 300);

  it('stops the start at once (it held it for the 300 s asked, four times)', async function () {
    const stop = new AbortController();
    const config = buildAgentConfig({ dataDir: registrar.dir(), registrarUrl: registrar.url(), port: 0, identity: 'id-only', hostId: 'mac:02:00:00:00:17:01' });
    const start = startHostAgent(config, { signal: stop.signal }).catch((caught: unknown) => caught);
    const deadline = Date.now() + 20_000;
    while (registrar.requestedAt.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(registrar.requestedAt.length, 'registrar requests before the stop').to.be.at.least(1);
    const started = Date.now();
    stop.abort();
    const error = await Promise.race([start, new Promise((resolve) => setTimeout(() => resolve('still starting'), 10_000))]);
    expect((error as Error).name, String(error)).to.equal('AbortError');
    // Room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started, 'ms from the stop to the start rejecting').to.be.below(8000);
  });
});

describe('push agent start: registration retried with the push back-off until stopped (spec §10.1)', function () {
  this.timeout(60_000);
  let dir: string;
  let registrar: Server;
  let connections = 0;
  const connectedAt: number[] = [];

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-registration-'));
    // A "registrar" that drops every connection: each registration try is one connection.
    registrar = createServer((socket) => {
      connections += 1;
      connectedAt.push(Date.now());
      socket.destroy();
    });
    await new Promise<void>((resolve) => registrar.listen(0, '127.0.0.1', resolve));
  });
  after(async function () {
    await new Promise((resolve) => registrar.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('tries more than 5 times, at least 1 s apart whatever the back-off options, then stops promptly when its signal aborts', async function () {
    const tpm = await createSoftwareTpm();
    const stop = new AbortController();
    const start = startPushAgent(
      {
        dataDir: dir,
        tpm: 'software',
        registrarUrl: `http://127.0.0.1:${(registrar.address() as AddressInfo).port}`,
        verifierUrl: 'http://127.0.0.1:1',
        backoff: { initialDelayMs: 20, maxDelayMs: 50 },
      },
      { tpm, signal: stop.signal },
    ).catch((caught: unknown) => caught);
    // Six waits of 1 … 1.25 s: a deadline well past them for a CI host that stalls.
    const deadline = Date.now() + 40_000;
    while (connections <= 6 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    stop.abort();
    const error = await start;
    expect(connections, 'registration tries before the stop').to.be.greaterThan(6);
    // A lower bound only (a stall makes the gaps longer): the 20 ms back-off asked for is raised to 1 s.
    const gaps = connectedAt.slice(1).map((at, i) => at - (connectedAt[i] ?? at));
    expect(Math.min(...gaps), 'shortest ms between two registration tries').to.be.at.least(950);
    expect((error as Error).name).to.equal('AbortError');
    // Unstopped, the tries go on for ever (the test's timeout, 30 s); room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started, 'ms from the stop to the start rejecting').to.be.below(8000);
    await tpm.close();
  });

  it('with registrationAttempts (a fleet simulator) gives up after that many tries', async function () {
    const tpm = await createSoftwareTpm();
    const before = connections;
    const error = await startPushAgent(
      {
        dataDir: dir,
        tpm: 'software',
        registrarUrl: `http://127.0.0.1:${(registrar.address() as AddressInfo).port}`,
        verifierUrl: 'http://127.0.0.1:1',
        backoff: { initialDelayMs: 20, maxDelayMs: 50 },
      },
      { tpm, registrationAttempts: 3 },
    ).catch((caught: unknown) => caught);
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(connections - before).to.equal(3);
    await tpm.close();
  });
});

describe('agent start: a stop during a registration the registrar never answers', function () {
  this.timeout(30_000);
  let dir: string;
  let registrar: Server;
  const sockets = new Set<Socket>();

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-hung-registration-'));
    // A "registrar" that takes the connection and never answers (hung, or a black hole behind a proxy).
    registrar = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => registrar.listen(0, '127.0.0.1', resolve));
  });
  after(async function () {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => registrar.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('stops at once, not after the registrar request times out (30 s)', async function () {
    const tpm = await createSoftwareTpm();
    const stop = new AbortController();
    const start = startPushAgent(
      { dataDir: dir, tpm: 'software', registrarUrl: `http://127.0.0.1:${(registrar.address() as AddressInfo).port}`, verifierUrl: 'http://127.0.0.1:1' },
      { tpm, signal: stop.signal },
    ).catch((caught: unknown) => caught);
    const deadline = Date.now() + 10_000;
    while (sockets.size === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sockets.size, 'registration request in flight').to.equal(1);
    const started = Date.now();
    stop.abort();
    const error = await start;
    expect((error as Error).name).to.equal('AbortError');
    // The request timeout is 30 s; room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started, 'ms from the stop to the start rejecting').to.be.below(8000);
    await tpm.close();
  });
});
