import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { initCa } from '../../lib/pki/ca-directory.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { enrolFakeAgent, quoteReplyOf } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT_ID = 'c0ffee00-0000-4000-8000-00000000a11e';
/**
 * The verifier's client certificate lives 15 s and is renewed when less than 12 s are left: looked at
 * every 3 s (a quarter of the margin), a renewal starts 3 to 6 s into a certificate's life and has 9 s
 * before its end. A key generation took up to 5.6 s on a loaded host; with 8 s and 6 s, a renewal that
 * took 4.5 s let a request out with an expired certificate.
 */
const VALIDITY_MS = 15_000;
const MARGIN_MS = 12_000;

/**
 * An agent that, as a Keylime agent does, admits only client certificates from the verifier's CA (its
 * `trusted_client_ca`), and, as ironlime's agent does, refuses one that expired since its connection's
 * handshake. It keeps connections alive and notes the serial of every client certificate it served.
 */
interface StrictAgent {
  readonly server: Server;
  readonly fake: FakeAgent;
  readonly port: number;
  readonly certPem: string;
  readonly servedSerials: Set<string>;
  refused: number;
}

async function startStrictAgent(clientCa: string): Promise<StrictAgent> {
  const tls = createSelfSignedServerCertificate({ commonName: AGENT_ID, sans: ['127.0.0.1'] });
  const fake = new FakeAgent();
  fake.measure('/usr/bin/tool', 'tool');
  const server = createServer({ cert: tls.certPem, key: tls.keyPem, ca: clientCa, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    if (Date.parse(peer.valid_to) < Date.now()) {
      agent.refused += 1;
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"code": 403, "status": "client certificate expired", "results": {}}');
      return;
    }
    agent.servedSerials.add(peer.serialNumber);
    const results = quoteReplyOf(fake, req.url);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 200, status: 'Success', results }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent: StrictAgent = { server, fake, port: (server.address() as { port: number }).port, certPem: tls.certPem, servedSerials: new Set(), refused: 0 };
  return agent;
}

describe('verifier: renews its client certificate towards agents while it runs', function () {
  this.timeout(120_000);
  let dir: string;
  let schema: Awaited<ReturnType<typeof createTestSchema>>;
  let agent: StrictAgent | undefined;
  let verifier: RunningVerifier | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-client-renewal-'));
    schema = await createTestSchema();
  });
  afterEach(async () => {
    await verifier?.close();
    agent?.server.closeAllConnections();
    agent?.server.close();
    await schema.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps attesting an agent past the first certificate’s end: new connections present the renewed one', async () => {
    const ca = await initCa(caDirOf(dir));
    agent = await startStrictAgent(ca.certPem);
    verifier = await startVerifier(
      { dataDir: dir, databaseUrl: schema.url, quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2 },
      { inProcessForTests: true, renewalForTests: { validityMs: VALIDITY_MS, renewMarginMs: MARGIN_MS } },
    );
    // The agent is enrolled once the renewal runs: the certificate the start issued may have lived out
    // most of its 15 s while a loaded host started the verifier (11 s seen), before any renewal could look.
    const startCert = verifier.clientTls.cert;
    await eventually('the first renewal', async () => verifier?.clientTls.cert !== startCert, 60_000, 100);
    const firstEnd = Date.parse(new X509Certificate(verifier.clientTls.cert).validTo);
    await enrolFakeAgent(verifier, AGENT_ID, agent);
    // Past the end of the first certificate the agent saw, and two renewals after it.
    await eventually('the first certificate ended and two renewed ones served', async () => Date.now() > firstEnd && (agent?.servedSerials.size ?? 0) >= 3, 60_000, 100);
    expect(agent.refused, 'requests the agent refused for an expired client certificate').to.equal(0);
    const before = await agentStatus(verifier);
    await eventually('another attestation', async () => (await agentStatus(verifier as RunningVerifier)).attestation_count > before.attestation_count, 30_000, 100);
    const after = await agentStatus(verifier);
    expect(agent.servedSerials.size, 'client certificates the agent saw').to.be.at.least(3);
    expect(after.operational_state).to.equal(OperationalState.GET_QUOTE);
    expect(after.attestation_count).to.be.greaterThan(before.attestation_count);
  });
});

async function agentStatus(verifier: RunningVerifier): Promise<{ operational_state: number; attestation_count: number }> {
  const reply = await verifier.service.app.inject({ method: 'GET', url: `/v2.6/agents/${AGENT_ID}` });
  expect(reply.statusCode, reply.body).to.equal(200);
  return (JSON.parse(reply.body) as { results: { operational_state: number; attestation_count: number } }).results;
}
