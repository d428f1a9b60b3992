import { connect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import { createHostAgentService } from '../../lib/agent/agent-service.js';
import { MAX_COUNTED_PEERS, OTHER_PEERS, RefusalLogLimit, type UnloggedRefusals } from '../../lib/agent/refusal-log-limit.js';
import { logRefusedClients } from '../../lib/agent/refused-client-log.js';
import type { KeylimeService } from '../../lib/http/keylime-service.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';

type Line = Record<string, unknown> & { level: number; msg: string };

const WARN = 40;
const REFUSED = 'client certificate refused at the TLS handshake';
const SUMMARY = 'client certificate refusals not logged one by one';

/**
 * A peer hammering the agent's port with handshakes without a certificate logged one warn line per
 * handshake; now the first few per address in a window are logged one by one, the rest counted in
 * one summary line.
 */
describe('agent: refused clients are logged one by one only up to a limit per peer address and window (real sockets)', function () {
  this.timeout(60_000);

  /** An agent service logging refusals with `limits` into `lines`. */
  async function agentLogging(lines: Line[], limits: { perPeer: number; windowMs: number }): Promise<{ service: KeylimeService; port: number }> {
    const f = tlsFixture();
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
    const service = createHostAgentService({ uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00001', identityMode: 'id-only', proofKey: undefined }, { cert: f.agent.certPem, key: f.agent.keyPem, clientCa: f.ca.certPem });
    logRefusedClients(service, logger, limits);
    return { service, port: (await service.listen({ host: '127.0.0.1', port: 0 })).port };
  }

  /** One TLS connection without a client certificate, ended by the agent. */
  function handshake(port: number): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => socket.write('GET /version HTTP/1.1\r\nHost: agent\r\n\r\n'));
      socket.on('data', () => socket.destroy());
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }

  const refusedLines = (lines: Line[]): Line[] => lines.filter((line) => line.level === WARN && line.msg === REFUSED);
  const summaries = (lines: Line[]): Line[] => lines.filter((line) => line.level === WARN && line.msg === SUMMARY);
  const summarized = (lines: Line[]): number => summaries(lines).reduce((sum, line) => sum + (line['count'] as number), 0);

  it('40 refused handshakes from one address: 3 lines one by one, the other 37 in one summary line when the service closes', async function () {
    const lines: Line[] = [];
    const { service, port } = await agentLogging(lines, { perPeer: 3, windowMs: 3_600_000 });
    try {
      for (let i = 0; i < 40; i += 1) await handshake(port);
      await eventually('every refusal counted', () => Promise.resolve(refusedLines(lines).length === 3), 10_000, 20);
    } finally {
      await service.close();
    }
    expect(refusedLines(lines)).to.have.length(3);
    expect(summaries(lines)).to.have.length(1);
    expect(summaries(lines)[0]).to.include({ address: '127.0.0.1', count: 37 });
  });

  it('a window that ends logs its summary, and the next refusal is logged one by one again', async function () {
    const lines: Line[] = [];
    const windowMs = 500;
    const { service, port } = await agentLogging(lines, { perPeer: 1, windowMs });
    try {
      for (let i = 0; i < 20; i += 1) await handshake(port);
      // However the 20 handshakes fell into windows, each is on a line of its own or in a summary's count.
      await eventually('every refusal logged or counted', () => Promise.resolve(refusedLines(lines).length + summarized(lines) === 20), 10_000, 20);
      expect(refusedLines(lines).length, 'most are only counted').to.be.below(20);
      // Timers fire in the order they are due: after two windows' wait, the window of the last handshake has ended.
      await sleep(2 * windowMs);
      const before = refusedLines(lines).length;
      await handshake(port);
      await eventually('the next refusal on its own line', () => Promise.resolve(refusedLines(lines).length === before + 1), 10_000, 20);
    } finally {
      await service.close();
    }
    expect(refusedLines(lines).length + summarized(lines)).to.equal(21);
  });

  it('refusals from more addresses than it counts apart share one count, not a growing map', function () {
    const summaries: UnloggedRefusals[] = [];
    const limit = new RefusalLogLimit((unlogged) => summaries.push(unlogged), { perPeer: 1, windowMs: 3_600_000 });
    let logged = 0;
    for (let i = 0; i < MAX_COUNTED_PEERS + 500; i += 1) {
      if (limit.admit(`10.0.${i >> 8}.${i & 255}`)) logged += 1;
    }
    limit.close();
    expect(logged).to.equal(MAX_COUNTED_PEERS);
    expect(summaries).to.deep.equal([{ address: OTHER_PEERS, count: 500 }]);
  });
});
