import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { tenantTlsHint } from '../../lib/cli/tenant-tls-hints.js';
import { AgentClient } from '../../lib/agent/agent-client.js';
import { tlsFixture } from '../http/tls-fixture.js';

/**
 * An agent started without `--client-ca` trusts its own CA, not the services': Node closes the tenant's
 * connection right after the handshake, with no TLS alert, and the tenant said only "unreachable:
 * connection closed before the response head". The hint names the agent's `--client-ca`.
 */
describe('tenant: an agent that closes the connection to a client certificate of another CA', function () {
  let server: Server;
  let url: string;

  before(async function () {
    const f = tlsFixture();
    // The agent's mTLS as agent-service.ts sets it: a certificate from `ca` required in every handshake.
    server = createServer({ cert: f.agent.certPem, key: f.agent.keyPem, ca: f.otherCa.certPem, requestCert: true, rejectUnauthorized: true }, (_request, response) => response.end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    await new Promise((resolve) => server.close(resolve));
  });

  it("says the agent's --client-ca is the likely cause; the registrar's and the verifier's URLs get no such hint", async function () {
    const f = tlsFixture();
    // The tenant's client of agents (tenant-agent-calls.ts).
    const client = new AgentClient({ baseUrl: url, agentCert: f.agent.certPem, clientTls: { cert: f.client.certPem, key: f.client.keyPem }, apiVersion: '2.6', timeoutMs: 10_000 });
    const error = await client.identityQuote('abc').then(
      () => undefined,
      (caught: unknown) => caught,
    );
    client.close();
    expect(String(error), String(error)).to.include('connection closed before the response head');
    const hinted = tenantTlsHint(error, { registrar: 'https://127.0.0.1:8891', verifier: 'https://127.0.0.1:8881' });
    expect(hinted?.message).to.equal(
      `${(error as Error).message} (an agent closes the connection unanswered when the client certificate is not from the CA it trusts: start it with --client-ca <the services' ca/cacert.crt>; its default is its own <data-dir>/ca/cacert.crt)`,
    );
    expect(tenantTlsHint(error, { registrar: url })).to.equal(undefined);
  });
});
