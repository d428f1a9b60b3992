import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BadRemoteReplyError, KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { loadOrCreateClientTls, type ServiceTls } from '../../lib/pki/service-tls.js';
import { httpsServiceUrl } from '../../lib/http/keylime-client.js';
import { AgentClient } from '../../lib/agent/agent-client.js';
import { RepeatedTexts } from '../../lib/http/repeated-member-json.js';
import { spyOnJsonParse } from '../http/json-parse-spy.js';

/** The one agent client (tenant and verifier) on the thin keep-alive client, against a real TLS server: replies, every error class, the pin. */
describe('agent client (thin keep-alive mTLS client)', function () {
  let dir: string;
  let server: Server;
  let port: number;
  let client: ServiceTls;
  const tls = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
  let answer: (url: string) => [number, string] = () => [200, '{}'];
  const seen: { url: string; body: string; peerCert: boolean }[] = [];

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-agent-conn-'));
    client = await loadOrCreateClientTls({ dataDir: dir, serviceName: 'verifier-client' });
    server = createServer({ cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body, peerCert: Object.keys((req.socket as import('node:tls').TLSSocket).getPeerCertificate()).length > 0 });
        const [status, text] = answer(req.url ?? '');
        if (status === 0) {
          return;
        }
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  after(function () {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connect = (agentCert = tls.certPem, timeoutMs = 5000): AgentClient =>
    new AgentClient({ baseUrl: httpsServiceUrl('127.0.0.1', port), agentCert, clientTls: client, apiVersion: '2.2', timeoutMs });

  it('sends the quote query and V, presents the client certificate, and returns results unvalidated', async function () {
    const connection = connect();
    answer = () => [200, JSON.stringify({ code: 200, status: 'Success', results: { quote: 42 } })];
    expect(await connection.integrityQuoteReply({ nonce: 'abc', mask: '0x400', partial: true, imaEntry: 7 })).to.deep.equal({ quote: 42 });
    expect(seen.at(-1)).to.deep.include({ url: '/v2.2/quotes/integrity?nonce=abc&mask=0x400&partial=1&ima_ml_entry=7', peerCert: true });
    await connection.sendVkey('S0VZ');
    expect(seen.at(-1)).to.deep.include({ url: '/v2.2/keys/vkey', body: '{"encrypted_key":"S0VZ"}' });
    await connection.notifyRevocation('{"msg":"m","signature":""}');
    expect(seen.at(-1)).to.deep.include({ url: '/v2.2/notifications/revocation', body: '{"msg":"m","signature":""}' });
    connection.close();
  });

  it('validates the typed methods\' results (a shape mismatch is BadRemoteReplyError) and takes a 204 as empty', async function () {
    const connection = connect();
    answer = () => [200, JSON.stringify({ code: 200, status: 'Success', results: { hmac: 'ab'.repeat(48) } })];
    expect(await connection.verifyKey('c h')).to.equal('ab'.repeat(48));
    expect(seen.at(-1)?.url).to.equal('/v2.2/keys/verify?challenge=c%20h');
    answer = () => [200, JSON.stringify({ code: 200, status: 'Success', results: { hmac: 7 } })];
    expect(await connection.verifyKey('c').catch((e: unknown) => e)).to.be.instanceOf(BadRemoteReplyError);
    answer = () => [200, JSON.stringify({ code: 200, status: 'Success', results: { quote: 42 } })];
    expect(await connection.integrityQuote({ nonce: 'a', mask: '0x1', partial: false }).catch((e: unknown) => e)).to.be.instanceOf(BadRemoteReplyError);
    answer = () => [204, ''];
    expect(await connection.integrityQuoteReply({ nonce: 'a', mask: '0x1', partial: false })).to.deep.equal({});
    connection.close();
  });

  it('maps a non-2xx status, a non-envelope, a timeout and a wrong certificate to typed errors', async function () {
    const connection = connect(tls.certPem, 300);
    answer = () => [500, JSON.stringify({ code: 500, status: 'Internal', results: {} })];
    const failed = await connection.integrityQuoteReply({ nonce: 'a', mask: '0x1', partial: false, imaEntry: 0 }).catch((e: unknown) => e);
    expect(failed).to.be.instanceOf(KeylimeHttpError);
    expect((failed as KeylimeHttpError).remoteHttpStatus).to.equal(500);
    answer = () => [200, 'not json'];
    expect(await connection.integrityQuoteReply({ nonce: 'a', mask: '0x1', partial: false, imaEntry: 0 }).catch((e: unknown) => e)).to.be.instanceOf(BadRemoteReplyError);
    answer = () => [0, ''];
    const silent = await connection.integrityQuoteReply({ nonce: 'a', mask: '0x1', partial: false, imaEntry: 0 }).catch((e: unknown) => e);
    expect(silent).to.be.instanceOf(ServiceUnreachableError);
    expect((silent as ServiceUnreachableError).reason).to.equal('timeout');
    connection.close();
    const other = createSelfSignedServerCertificate({ commonName: 'agent', sans: ['127.0.0.1'] });
    const pinnedElsewhere = connect(other.certPem);
    const refused = await pinnedElsewhere.integrityQuoteReply({ nonce: 'a', mask: '0x1', partial: false, imaEntry: 0 }).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(ServiceUnreachableError);
    expect((refused as ServiceUnreachableError).reason).to.equal('tls');
    pinnedElsewhere.close();
  });

  it('with a boot log pool, reads a repeated boot log without parsing it again, remembered from a 2xx reply only', async function () {
    const connection = new AgentClient({
      baseUrl: httpsServiceUrl('127.0.0.1', port),
      agentCert: tls.certPem,
      clientTls: client,
      apiVersion: '2.2',
      bootLogs: new RepeatedTexts(),
    });
    const log = 'QUJD'.repeat(1000);
    const reply = (code: number): [number, string] => [code, JSON.stringify({ code, status: 'x', results: { quote: 'r', mb_measurement_list: log } })];
    const request = { nonce: 'a', mask: '0x1', partial: true };
    const spy = spyOnJsonParse();
    try {
      answer = () => reply(500);
      expect(await connection.integrityQuoteReply(request).catch((e: unknown) => e)).to.be.instanceOf(KeylimeHttpError);
      answer = () => reply(200);
      for (let round = 0; round < 2; round += 1) {
        expect(await connection.integrityQuoteReply(request)).to.deep.equal({ quote: 'r', mb_measurement_list: log });
      }
    } finally {
      spy.restore();
      connection.close();
    }
    // The 500 and the first 200 are parsed whole; the second 200 without its log.
    expect(spy.lengths.map((length) => length > log.length)).to.deep.equal([true, true, false]);
  });
});
