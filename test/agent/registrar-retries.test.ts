import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { withRegistrarRetries } from '../../lib/agent/agent-enrolment.js';
import { startPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';

const unreachable = (): ServiceUnreachableError => new ServiceUnreachableError('http://registrar', 'network', 'ECONNREFUSED');

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

describe('push agent start: registration retried with the push back-off until stopped (spec §10.1)', function () {
  this.timeout(30_000);
  let dir: string;
  let registrar: Server;
  let connections = 0;

  before(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-registration-'));
    // A "registrar" that drops every connection: each registration try is one connection.
    registrar = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => registrar.listen(0, '127.0.0.1', resolve));
  });
  after(async function () {
    await new Promise((resolve) => registrar.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('tries more than 5 times, then stops promptly when its signal aborts', async function () {
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
    const deadline = Date.now() + 15_000;
    while (connections <= 6 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    stop.abort();
    const error = await start;
    expect(connections, 'registration tries before the stop').to.be.greaterThan(6);
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
