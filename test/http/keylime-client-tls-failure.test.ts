import { createServer as createPlainServer, type Server as PlainServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createKeylimeClient, httpsServiceUrl } from '../../lib/http/keylime-client.js';
import type { KeylimeClientTls } from '../../lib/http/keylime-client-tls.js';
import { tlsFailureKind, type TlsFailureKind } from '../../lib/http/keylime-transport-errors.js';
import { tlsFixture } from './tls-fixture.js';

async function listen(server: Server | PlainServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function failureOf(url: string, tls: KeylimeClientTls): Promise<TlsFailureKind | undefined | 'ok'> {
  const client = createKeylimeClient({ baseUrl: url, tls, timeoutMs: 10_000 });
  try {
    await client.get('/version');
    return 'ok';
  } catch (error) {
    return tlsFailureKind(error);
  } finally {
    client.close();
  }
}

describe('keylime client: which TLS failures are configuration errors (issue 11 item 11)', function () {
  const servers: (Server | PlainServer)[] = [];
  const answer = (request: { resume(): void }, response: { end(body: string): void }): void => {
    request.resume();
    response.end('{"code": 200, "status": "Success", "results": {}}');
  };

  after(async function () {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('tells a server certificate, a refused client certificate and a plain HTTP port apart; a reset is none of them', async function () {
    const tls = tlsFixture();
    const verifier = createServer({ cert: tls.server.certPem, key: tls.server.keyPem, ca: tls.ca.certPem, requestCert: true, rejectUnauthorized: true }, answer);
    const agent = createServer({ cert: tls.agent.certPem, key: tls.agent.keyPem }, answer);
    const plain = createPlainServer(answer);
    const reset = createPlainServer();
    reset.on('connection', (socket) => socket.destroy());
    servers.push(verifier, agent, plain, reset);
    const [v, a, p, r] = [await listen(verifier), await listen(agent), await listen(plain), await listen(reset)];
    const client = { cert: tls.client.certPem, key: tls.client.keyPem };
    expect(await failureOf(`https://127.0.0.1:${v}`, { ca: tls.ca.certPem, ...client })).to.equal('ok');
    expect(await failureOf(`https://127.0.0.1:${v}`, { ca: tls.otherCa.certPem, ...client }), 'unknown CA').to.equal('server-certificate');
    expect(await failureOf(`https://127.0.0.1:${a}`, { ca: tls.ca.certPem }), 'self-signed').to.equal('server-certificate');
    // TLS 1.3: the verifier's "certificate required" alert reaches the client.
    expect(await failureOf(`https://127.0.0.1:${v}`, { ca: tls.ca.certPem }), 'no client certificate').to.equal('client-certificate');
    // Another agent certificate fails the chain to the pinned one before the pin comparison runs.
    expect(await failureOf(`https://127.0.0.1:${a}`, { pinnedServerCert: tls.otherAgent.certPem }), 'pinned').to.equal('server-certificate');
    expect(await failureOf(`https://127.0.0.1:${p}`, { ca: tls.ca.certPem }), 'plain HTTP').to.equal('protocol');
    expect(await failureOf(`https://127.0.0.1:${r}`, { ca: tls.ca.certPem }), 'reset').to.equal(undefined);
  });

  it('builds https://host:port in one place, bracketing IPv6 literals', function () {
    expect(httpsServiceUrl('10.0.0.5', 9002)).to.equal('https://10.0.0.5:9002');
    expect(httpsServiceUrl('fd00::5', 9002)).to.equal('https://[fd00::5]:9002');
    expect(httpsServiceUrl('[fd00::5]', 9002)).to.equal('https://[fd00::5]:9002');
    expect(httpsServiceUrl('agent.example', 443)).to.equal('https://agent.example:443');
  });
});
