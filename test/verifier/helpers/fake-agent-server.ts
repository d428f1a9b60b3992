import { createServer, type Server } from 'node:https';
import { createSelfSignedServerCertificate } from '../../../lib/pki/self-signed-server.js';
import type { FakeAgent } from '../../attestation/fake-agent.js';

/** A listening HTTPS server that plays every agent of a test (`serveFakeAgents`). */
export interface FakeAgentServer {
  readonly server: Server;
  readonly port: number;
  /** Its self-signed certificate: enrol it as the agents' `mtls_cert`. */
  readonly certPem: string;
}

/**
 * Answers every quote request on 127.0.0.1 with `fake`'s reply over `mask` (bit i = PCR i), from the
 * IMA entry and with the partial flag the verifier asked for, in Keylime's envelope, `answerDelayMs` late.
 */
export async function serveFakeAgents(fake: FakeAgent, mask: number, answerDelayMs = 0): Promise<FakeAgentServer> {
  const tls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const query = new URL(req.url ?? '/', 'https://agent').searchParams;
    const results = fake.reply({ nonce: query.get('nonce') ?? '', mask, imaEntry: Number(query.get('ima_ml_entry') ?? 0), partial: query.get('partial') === '1' });
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 200, status: 'Success', results }));
    };
    if (answerDelayMs > 0) setTimeout(answer, answerDelayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, certPem: tls.certPem };
}
