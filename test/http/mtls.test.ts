import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { serverApiVersionPolicy, agentApiVersionPolicy } from '../../lib/http/api-version.js';
import { ServiceUnreachableError, KeylimeHttpError } from '../../lib/http/client-errors.js';
import { ok } from '../../lib/http/envelope.js';
import { createKeylimeClient } from '../../lib/http/keylime-client.js';
import type { KeylimeClientTls } from '../../lib/http/keylime-client-tls.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';
import { clientCertificateEnding, getOn, tlsFixture } from './tls-fixture.js';

async function attempt(url: string, path: string, tls: KeylimeClientTls): Promise<unknown> {
  const client = createKeylimeClient({ baseUrl: url, tls, timeoutMs: 10_000 });
  try {
    return await client.get(path);
  } catch (error) {
    return error;
  } finally {
    client.close();
  }
}

describe('http: mTLS over real sockets', () => {
  describe('verifier-style service: client certificate optional in TLS, required on admin routes', () => {
    let service: KeylimeService;
    let url: string;

    before(async () => {
      const f = tlsFixture();
      service = createService({
        name: 'verifier',
        apiVersions: serverApiVersionPolicy(),
        tls: { cert: f.server.certPem, key: f.server.keyPem, ca: f.ca.certPem, requestClientCert: true, requireClientCert: 'routes' },
      });
      service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, { current_version: '2.6' }) });
      service.route({
        method: 'GET',
        url: '/agents',
        admin: true,
        handler: ({ reply, clientCertificate }) => ok(reply, { caller: clientCertificate?.subject.CN }),
      });
      url = (await service.listen({ host: '127.0.0.1', port: 0 })).url;
    });
    after(async () => {
      await service.close();
    });

    it('serves public routes without a client certificate', async () => {
      expect(await attempt(url, '/version', { ca: tlsFixture().ca.certPem })).to.deep.equal({
        code: 200,
        status: 'Success',
        results: { current_version: '2.6' },
      });
    });

    it('answers 403 on an admin route without a client certificate', async () => {
      const error = await attempt(url, '/v2.6/agents', { ca: tlsFixture().ca.certPem });
      expect(error).to.be.instanceOf(KeylimeHttpError);
      expect(error).to.deep.include({ code: 'ERR_REMOTE_HTTP_STATUS', httpStatus: 403, status: 'client certificate required', results: {} });
    });

    it('answers 403 on an admin route for a client certificate from another CA, saying it is not from the CA it trusts', async () => {
      const f = tlsFixture();
      const error = await attempt(url, '/v2.6/agents', { ca: f.ca.certPem, cert: f.foreignClient.certPem, key: f.foreignClient.keyPem });
      expect(error).to.be.instanceOf(KeylimeHttpError);
      expect(error).to.deep.include({ httpStatus: 403, status: 'client certificate not issued by the CA this service trusts (its tls.ca)', results: {} });
    });

    it('answers 403 for a certificate of the right CA without clientAuth (a server certificate), saying so', async () => {
      const f = tlsFixture();
      const error = await attempt(url, '/v2.6/agents', { ca: f.ca.certPem, cert: f.server.certPem, key: f.server.keyPem });
      expect((error as KeylimeHttpError).httpStatus).to.equal(403);
      expect((error as KeylimeHttpError).status).to.match(/^client certificate not for client authentication: one with the clientAuth usage from the CA this service trusts is needed \(its tls\.ca\)$/);
    });

    it('answers 403 "client certificate expired" for one of the CA that had expired at the handshake', async () => {
      const f = tlsFixture();
      const expired = clientCertificateEnding(f.ca, -120_000);
      const error = await attempt(url, '/v2.6/agents', { ca: f.ca.certPem, cert: expired.certPem, key: expired.keyPem });
      expect(error).to.deep.include({ httpStatus: 403, status: 'client certificate expired' });
    });

    it('refuses a client certificate that expired since its kept-alive connection was opened (403 on that connection)', async () => {
      const f = tlsFixture();
      const expiring = clientCertificateEnding(f.ca, 3000);
      const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: f.ca.certPem, cert: expiring.certPem, key: expiring.keyPem });
      try {
        const before = await getOn(agent, `${url}/v2.6/agents`);
        expect(before.status).to.equal(200);
        await sleep(Math.max(0, expiring.notAfterMs - Date.now()) + 1500);
        const after = await getOn(agent, `${url}/v2.6/agents`);
        expect(after.reusedSocket, 'the same connection').to.equal(true);
        expect(after.status).to.equal(403);
        expect(after.body).to.include('client certificate expired');
      } finally {
        agent.destroy();
      }
    });

    it('serves admin routes to a client certificate from the CA and tells the handler who called', async () => {
      const f = tlsFixture();
      expect(await attempt(url, '/v2.6/agents', { ca: f.ca.certPem, cert: f.client.certPem, key: f.client.keyPem })).to.deep.equal({
        code: 200,
        status: 'Success',
        results: { caller: 'tenant' },
      });
    });

    it('fails the handshake when the client does not trust the server CA', async () => {
      const error = await attempt(url, '/version', { ca: tlsFixture().otherCa.certPem });
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(error).to.deep.include({ code: 'ERR_SERVICE_UNREACHABLE', reason: 'tls' });
      expect((error as Error).message).to.match(/TLS handshake failed: SELF_SIGNED_CERT_IN_CHAIN/);
    });
  });

  describe('agent-style service: self-signed pinned server certificate, mTLS on every route', () => {
    let service: KeylimeService;
    let url: string;

    before(async () => {
      const f = tlsFixture();
      service = createService({
        name: 'agent',
        apiVersions: agentApiVersionPolicy(),
        tls: { cert: f.agent.certPem, key: f.agent.keyPem, ca: f.ca.certPem, requestClientCert: true, requireClientCert: 'all' },
      });
      service.route({ method: 'GET', url: '/version', versioned: false, handler: ({ reply }) => ok(reply, { supported_version: '2.6' }) });
      const port = (await service.listen({ host: '127.0.0.2', port: 0 })).port;
      // Reached by an address the certificate does not name: pinning replaces the host name check.
      url = `https://127.0.0.2:${port}`;
    });
    after(async () => {
      await service.close();
    });

    it('accepts exactly the pinned self-signed certificate', async () => {
      const f = tlsFixture();
      expect(await attempt(url, '/version', { pinnedServerCert: f.agent.certPem, cert: f.client.certPem, key: f.client.keyPem })).to.deep.equal({
        code: 200,
        status: 'Success',
        results: { supported_version: '2.6' },
      });
    });

    it('refuses, on its kept-alive connection, a client whose certificate expired since the handshake (403)', async () => {
      const f = tlsFixture();
      const expiring = clientCertificateEnding(f.ca, 3000);
      const agent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: f.agent.certPem, cert: expiring.certPem, key: expiring.keyPem, checkServerIdentity: () => undefined });
      try {
        expect((await getOn(agent, `${url}/version`)).status).to.equal(200);
        await sleep(Math.max(0, expiring.notAfterMs - Date.now()) + 1500);
        const after = await getOn(agent, `${url}/version`);
        expect(after.reusedSocket, 'the same connection').to.equal(true);
        expect(after.status).to.equal(403);
        expect(after.body).to.include('client certificate expired');
      } finally {
        agent.destroy();
      }
    });

    it('refuses a different certificate with the same name', async () => {
      const f = tlsFixture();
      const error = await attempt(url, '/version', { pinnedServerCert: f.otherAgent.certPem, cert: f.client.certPem, key: f.client.keyPem });
      expect(error).to.be.instanceOf(ServiceUnreachableError);
      expect(error).to.deep.include({ code: 'ERR_SERVICE_UNREACHABLE', reason: 'tls' });
    });

    it('refuses the agent certificate without pinning (it is self-signed)', async () => {
      const f = tlsFixture();
      const error = await attempt(url, '/version', { ca: f.ca.certPem, cert: f.client.certPem, key: f.client.keyPem });
      expect(error).to.deep.include({ reason: 'tls' });
    });

    it('fails the handshake for a client without a certificate, or with one from another CA', async () => {
      const f = tlsFixture();
      const none = await attempt(url, '/version', { pinnedServerCert: f.agent.certPem });
      expect(none).to.be.instanceOf(ServiceUnreachableError);
      expect((none as Error).message).to.match(/CERTIFICATE_REQUIRED|certificate required|ECONNRESET/);
      const foreign = await attempt(url, '/version', { pinnedServerCert: f.agent.certPem, cert: f.foreignClient.certPem, key: f.foreignClient.keyPem });
      expect(foreign).to.be.instanceOf(ServiceUnreachableError);
      expect((foreign as ServiceUnreachableError).reason).to.be.oneOf(['tls', 'network']);
    });
  });
});
