import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { UnsecuredJWT, type JWTPayload } from 'jose';
import type { EvidenceProvider } from '../../lib/kbs-client/evidence-provider.js';
import { KbsBadReplyError } from '../../lib/kbs-client/kbs-client-errors.js';
import { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';
import { rejectionOf } from '../helpers/rejection.js';

/** Counts the RCAR exchanges (one evidence per exchange); the evidence is an empty object. */
class CountingProvider implements EvidenceProvider {
  readonly tee = 'tpm';
  calls = 0;

  primaryEvidence(): Promise<Readonly<Record<string, unknown>>> {
    this.calls += 1;
    return Promise.resolve({});
  }
}

/**
 * A stand-in KBS that answers `/auth` with the `set-cookie` line the test sets and `/attest` with the
 * token it sets; it keeps the path and cookie of every request it received.
 */
class OddKbs {
  setCookie: string | string[] = 'kbs-session-id=0123456789abcdef0123456789abcdef; Path=/kbs/v0';
  /** What `/attest` sets, if anything. */
  attestSetCookie: string[] = [];
  token = new UnsecuredJWT({}).setExpirationTime('5m').encode();
  readonly received: { url: string | undefined; cookie: string | undefined }[] = [];
  private readonly server: Server = createServer((request: IncomingMessage, response) => {
    request.resume();
    request.on('end', () => {
      this.received.push({ url: request.url, cookie: request.headers.cookie });
      if (request.url === '/kbs/v0/auth') {
        response.setHeader('set-cookie', this.setCookie);
        response.end(JSON.stringify({ nonce: Buffer.alloc(32, 1).toString('base64') }));
      } else if (request.url === '/kbs/v0/attest') {
        if (this.attestSetCookie.length > 0) response.setHeader('set-cookie', this.attestSetCookie);
        response.end(JSON.stringify({ token: this.token }));
      } else {
        response.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"type":"x/errors/PluginNotFound","detail":""}');
      }
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('kbs client: odd replies from a broker or an issuer', function () {
  let kbs: OddKbs;
  let http: KbsHttp;

  beforeEach(async function () {
    kbs = new OddKbs();
    http = new KbsHttp({ url: await kbs.start() });
  });

  afterEach(async function () {
    await http?.close();
    await kbs?.close();
  });

  it('refuses a session cookie longer than it keeps (KbsBadReplyError) instead of sending back a cut one', async function () {
    kbs.setCookie = `kbs-session-id=${'a'.repeat(80)}; Path=/kbs/v0`;
    const client = new KbsClient({ broker: http, evidence: new CountingProvider(), mode: 'background' });
    await rejectionOf(client.token(), KbsBadReplyError);
    expect(kbs.received.map((request) => request.url), 'nothing attested with a cut cookie').to.deep.equal(['/kbs/v0/auth']);
  });

  it('reads the session cookie among other cookies and attributes of the line', async function () {
    kbs.setCookie = 'lb=x1; kbs-session-id=0123456789abcdef0123456789abcdef ; Path=/kbs/v0';
    await new KbsClient({ broker: http, evidence: new CountingProvider(), mode: 'background' }).token();
    expect(kbs.received[1]?.cookie).to.equal('lb=x1; kbs-session-id=0123456789abcdef0123456789abcdef');
  });

  it("sends back the other cookies the broker set (a load balancer's pin), as guest-components' cookie store does", async function () {
    kbs.setCookie = ['SERVERID=replica-2; Path=/', 'kbs-session-id=0123456789abcdef0123456789abcdef; Path=/kbs/v0; HttpOnly'];
    kbs.attestSetCookie = ['AWSALB="a/b+c=="; Expires=Thu, 01 Jan 2099 00:00:00 GMT; Path=/'];
    const client = new KbsClient({ broker: http, evidence: new CountingProvider(), mode: 'background' });
    await client.getResource('kbs:///r/t/a').catch(() => undefined);
    expect(kbs.received.map((request) => request.cookie)).to.deep.equal([
      undefined,
      'SERVERID=replica-2; kbs-session-id=0123456789abcdef0123456789abcdef',
      'SERVERID=replica-2; AWSALB="a/b+c=="; kbs-session-id=0123456789abcdef0123456789abcdef',
    ]);
  });

  it('drops a cookie the broker removes, and ignores cookies outside RFC 6265 or past 16', async function () {
    const many = Array.from({ length: 20 }, (_, index) => `c${index}=${index}`);
    kbs.setCookie = ['bad name=1', 'evil=a\\b', 'gone=1', ...many, 'kbs-session-id=0123456789abcdef0123456789abcdef'];
    kbs.attestSetCookie = ['gone=; Max-Age=0', 'c0=; Expires=Thu, 01 Jan 1970 00:00:00 GMT'];
    const client = new KbsClient({ broker: http, evidence: new CountingProvider(), mode: 'background' });
    await client.getResource('kbs:///r/t/a').catch(() => undefined);
    const kept = many.slice(0, 15).join('; ');
    expect(kbs.received[1]?.cookie).to.equal(`gone=1; ${kept}; kbs-session-id=0123456789abcdef0123456789abcdef`);
    expect(kbs.received[2]?.cookie).to.equal(`${many.slice(1, 15).join('; ')}; kbs-session-id=0123456789abcdef0123456789abcdef`);
  });

  it('refuses a token that is not a compact JWS (KbsBadReplyError), not a header the broker is blamed for', async function () {
    const payload = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    kbs.token = `e30\r\nx-injected: 1.${payload}.`;
    const client = new KbsClient({ broker: http, evidence: new CountingProvider(), mode: 'passport' });
    const error = await rejectionOf(client.getResource('kbs:///r/t/a'), KbsBadReplyError);
    expect(error.message).to.match(/token/);
    expect(kbs.received.map((request) => request.url), 'no resource request sent').to.deep.equal(['/kbs/v0/auth', '/kbs/v0/attest']);
  });

  it('does not keep a token whose exp is not a number: it attests again each time, as for a token without exp', async function () {
    kbs.token = new UnsecuredJWT({ exp: 'later' } as unknown as JWTPayload).encode();
    const evidence = new CountingProvider();
    const client = new KbsClient({ broker: http, evidence, mode: 'passport' });
    await client.token();
    await client.token();
    expect(evidence.calls).to.equal(2);
  });
});
