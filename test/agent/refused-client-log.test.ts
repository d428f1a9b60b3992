import { Agent as HttpsAgent } from 'node:https';
import { connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import { createHostAgentService } from '../../lib/agent/agent-service.js';
import type { KeylimeService } from '../../lib/http/keylime-service.js';
import { clientCertificateEnding, getOn, tlsFixture } from '../http/tls-fixture.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';

/** A log line as pino writes it. */
type Line = Record<string, unknown> & { level: number; msg: string };

const WARN = 40;

/**
 * A client the agent's mTLS refuses is a security event: it is logged at warn with the peer's address
 * and the reason — at the handshake (no certificate, one from another CA) and on a kept-alive
 * connection whose certificate lapsed (the 403, which was logged only at info, without the address).
 */
describe('agent: a refused client certificate is logged at warn with the peer and the reason (real sockets)', function () {
  this.timeout(30_000);
  const lines: Line[] = [];
  let service: KeylimeService;
  let port: number;

  before(async function () {
    const f = tlsFixture();
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
    service = createHostAgentService({ uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000', identityMode: 'id-only', proofKey: undefined }, { cert: f.agent.certPem, key: f.agent.keyPem, clientCa: f.ca.certPem }, logger);
    port = (await service.listen({ host: '127.0.0.1', port: 0 })).port;
  });

  after(async function () {
    await service?.close();
  });

  /** One TLS connection with `cert`/`key` (none: no client certificate), ended at once or by the agent. */
  function handshake(credentials: { cert?: string; key?: string }): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...credentials }, () => socket.write('GET /version HTTP/1.1\r\nHost: agent\r\n\r\n'));
      socket.on('data', () => socket.destroy());
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }

  /** The warn lines logged after the first `from` lines. */
  const warnings = (from: number): Line[] => lines.slice(from).filter((line) => line.level === WARN);

  it('a client without a certificate: warn, its address and "no client certificate"', async function () {
    const from = lines.length;
    await handshake({});
    await eventually('the warn line', () => Promise.resolve(warnings(from).length > 0), 10_000, 20);
    expect(warnings(from)).to.have.length(1);
    expect(warnings(from)[0]).to.include({ msg: 'client certificate refused at the TLS handshake', reason: 'no client certificate' });
    expect(warnings(from)[0]?.['peer']).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('a certificate from another CA: warn, its address and OpenSSL\'s verify result', async function () {
    const f = tlsFixture();
    const from = lines.length;
    await handshake({ cert: f.foreignClient.certPem, key: f.foreignClient.keyPem });
    await eventually('the warn line', () => Promise.resolve(warnings(from).length > 0), 10_000, 20);
    expect(warnings(from)).to.have.length(1);
    expect(warnings(from)[0]).to.include({ msg: 'client certificate refused at the TLS handshake', reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    expect(warnings(from)[0]?.['peer']).to.match(/^127\.0\.0\.1:\d+$/);
  });

  it('a certificate of the trusted CA: nothing at warn', async function () {
    const f = tlsFixture();
    const from = lines.length;
    const agent = new HttpsAgent({ ca: f.agent.certPem, cert: f.client.certPem, key: f.client.keyPem, checkServerIdentity: () => undefined });
    try {
      expect((await getOn(agent, `https://127.0.0.1:${port}/version`)).status).to.equal(200);
    } finally {
      agent.destroy();
    }
    expect(warnings(from)).to.deep.equal([]);
  });

  it('a certificate that lapsed on its kept-alive connection: the 403 is logged at warn with the address and "client certificate expired"', async function () {
    const f = tlsFixture();
    const expiring = clientCertificateEnding(f.ca, 3000);
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: f.agent.certPem, cert: expiring.certPem, key: expiring.keyPem, checkServerIdentity: () => undefined });
    try {
      expect((await getOn(agent, `https://127.0.0.1:${port}/version`)).status).to.equal(200);
      await sleep(Math.max(0, expiring.notAfterMs - Date.now()) + 1500);
      const from = lines.length;
      const after = await getOn(agent, `https://127.0.0.1:${port}/version`);
      expect(after.reusedSocket, 'the same connection').to.equal(true);
      expect(after.status).to.equal(403);
      expect(warnings(from)).to.have.length(1);
      expect(warnings(from)[0]).to.include({ msg: 'client certificate refused', reason: 'client certificate expired' });
      expect(warnings(from)[0]?.['peer']).to.match(/^127\.0\.0\.1:\d+$/);
    } finally {
      agent.destroy();
    }
  });
});
