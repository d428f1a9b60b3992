import { createServer, type Server } from 'node:https';
import { expect } from 'chai';
import { createRuntimePolicy } from '../../../lib/ima/create-runtime-policy.js';
import { createSelfSignedServerCertificate } from '../../../lib/pki/self-signed-server.js';
import type { RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { FakeAgent, type FakeAgentOptions } from '../../attestation/fake-agent.js';

/** A `FakeAgent` answering quote requests over HTTPS, as a polled agent would. */
export interface FakePolledAgent {
  readonly fake: FakeAgent;
  readonly server: Server;
  readonly port: number;
  readonly certPem: string;
  /**
   * Set: each reply starts, then goes on one byte every `dripEveryMs` and never ends (an agent that
   * holds the verifier's request open without ever falling silent).
   */
  dripEveryMs?: number;
  /** Set: each quote is answered that long after its request (a round still in flight that long). */
  replyDelayMs?: number;
  /** Set: each quote request is taken and never answered (a hung node: no verdict until the request times out). */
  silent?: boolean;
}

/** What `fake` answers to the quote request of URL path `url` (its nonce, PCR mask, IMA offset, partial flag). */
export function quoteReplyOf(fake: FakeAgent, url: string | undefined): ReturnType<FakeAgent['reply']> {
  const query = new URL(url ?? '/', 'https://agent').searchParams;
  return fake.reply({
    nonce: query.get('nonce') ?? '',
    mask: Number.parseInt(query.get('mask') ?? '0', 16),
    imaEntry: Number(query.get('ima_ml_entry') ?? 0),
    partial: query.get('partial') === '1',
  });
}

/** Starts a `FakeAgent` (made with `options`) that has measured one tool, served on a local HTTPS port. */
export async function startFakePolledAgent(options: FakeAgentOptions = {}): Promise<FakePolledAgent> {
  const tls = createSelfSignedServerCertificate({ commonName: 'agents', sans: ['127.0.0.1'] });
  const fake = new FakeAgent(options);
  fake.measure('/usr/bin/tool', 'tool');
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    if (agent.silent === true) return;
    if (agent.dripEveryMs !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).write('{"code": 200, "status": "Success", "results": {"quote": "');
      const drip = setInterval(() => res.write('r'), agent.dripEveryMs);
      res.on('close', () => clearInterval(drip));
      return;
    }
    const results = quoteReplyOf(fake, req.url);
    const reply = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 200, status: 'Success', results }));
    };
    if (agent.replyDelayMs === undefined) reply();
    else setTimeout(reply, agent.replyDelayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const agent: FakePolledAgent = { fake, server, port: (server.address() as { port: number }).port, certPem: tls.certPem };
  return agent;
}

/** Enrols `agent` as `agentId` with a runtime policy allowing what it measured (stored under the agent's id). */
export async function enrolFakeAgent(verifier: RunningVerifier, agentId: string, agent: FakePolledAgent): Promise<void> {
  const { policy } = createRuntimePolicy({ imaListText: agent.fake.imaLines.join('\n') });
  const reply = await verifier.service.app.inject({
    method: 'POST',
    url: `/v2.6/agents/${agentId}`,
    payload: {
      v: null,
      cloudagent_ip: '127.0.0.1',
      cloudagent_port: agent.port,
      tpm_policy: '{"mask": "0x400"}',
      runtime_policy: Buffer.from(JSON.stringify(policy)).toString('base64'),
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa'],
      accept_tpm_signing_algs: ['rsassa'],
      ak_tpm: agent.fake.akTpm,
      mtls_cert: agent.certPem,
    },
  });
  expect(reply.statusCode, reply.body).to.equal(200);
}
