import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { IronlimeError } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';

/** Keylime 7.14's verifier `/version` (api_version.py, v2 mode) and a 7.12 one. */
const KEYLIME_7_14 = { current_version: '2.5', supported_versions: ['1.0', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5'] };
const KEYLIME_7_12 = { current_version: '2.3', supported_versions: ['1.0', '2.0', '2.1', '2.2', '2.3'] };
const IRONLIME = { current_version: '2.6', supported_versions: ['2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] };

/** A stand-in verifier: `/version` answers `versions()`, versioned URLs outside `served()` get Keylime's 400. */
class VersionedVerifier {
  readonly requests: string[] = [];
  versions: () => [number, unknown] = () => [200, IRONLIME];
  served: () => readonly string[] = () => IRONLIME.supported_versions;
  readonly server: Server = createServer((request, response) => {
    const url = request.url ?? '';
    this.requests.push(`${request.method} ${url}`);
    request.resume();
    const reply = (code: number, status: string, results: unknown): void => {
      response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ code, status, results }));
    };
    if (url === '/version') {
      const [code, results] = this.versions();
      reply(code, code === 200 ? 'Success' : 'Not Found', results);
      return;
    }
    const version = /^\/v(\d+\.\d+)\//.exec(url)?.[1];
    if (version === undefined || !this.served().includes(version)) {
      reply(400, 'API Version not supported', {});
      return;
    }
    reply(200, 'Success', url.includes('verify/evidence') ? { valid: 1, claims: {}, failures: [] } : { uuids: [['a1'], ['a2']] });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('VerifierClient: API version negotiation (issue 11 item 10)', function () {
  let verifier: VersionedVerifier;
  let client: VerifierClient | undefined;

  beforeEach(async function () {
    verifier = new VersionedVerifier();
    await verifier.start();
  });

  afterEach(async function () {
    client?.close();
    client = undefined;
    await verifier.stop();
  });

  const open = (options: { apiVersion?: string } = {}): VerifierClient => (client = new VerifierClient({ baseUrl: verifier.url, ...options }));

  it('asks /version once and uses the highest common version: 2.6 with ironlime, 2.5 with Keylime 7.14, 2.3 with 7.12', async function () {
    for (const [versions, expected] of [
      [IRONLIME, '2.6'],
      [KEYLIME_7_14, '2.5'],
      [KEYLIME_7_12, '2.3'],
    ] as const) {
      verifier.versions = () => [200, versions];
      verifier.served = () => versions.supported_versions;
      verifier.requests.length = 0;
      const c = open();
      expect(await c.list()).to.deep.equal(['a1', 'a2']);
      expect(await c.list('')).to.deep.equal(['a1', 'a2']);
      expect(verifier.requests).to.deep.equal(['GET /version', `GET /v${expected}/agents`, `GET /v${expected}/agents?verifier=`]);
      c.close();
    }
  });

  it('retries once with a fresh version when the verifier answers "API version not supported"', async function () {
    const c = open();
    expect(await c.apiVersion()).to.equal('2.6');
    // The verifier is replaced by an older one between two calls.
    verifier.versions = () => [200, KEYLIME_7_12];
    verifier.served = () => KEYLIME_7_12.supported_versions;
    verifier.requests.length = 0;
    expect(await c.list()).to.deep.equal(['a1', 'a2']);
    expect(verifier.requests).to.deep.equal(['GET /v2.6/agents', 'GET /version', 'GET /v2.3/agents']);
  });

  it('gives up after one retry, and when /version names the same version, with the verifier refusal', async function () {
    const c = open();
    await c.apiVersion();
    verifier.served = () => [];
    verifier.requests.length = 0;
    const error = await c.list().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).to.be.instanceOf(KeylimeHttpError);
    expect((error as KeylimeHttpError).status).to.equal('API Version not supported');
    expect(verifier.requests).to.deep.equal(['GET /v2.6/agents', 'GET /version']);
  });

  it('refuses a verifier with no version in common, and speaks 2.1 to one without /version', async function () {
    verifier.versions = () => [200, { current_version: '3.0', supported_versions: ['3.0'] }];
    const error = await open()
      .list()
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(error).to.be.instanceOf(IronlimeError);
    expect((error as IronlimeError).code).to.equal('ERR_UNSUPPORTED_API_VERSION');
    expect((error as IronlimeError).message).to.equal('the verifier speaks API 3.0; this client speaks 2.1, 2.2, 2.3, 2.4, 2.5, 2.6');
    client?.close();
    verifier.versions = () => [404, {}];
    verifier.requests.length = 0;
    expect(await open().list()).to.deep.equal(['a1', 'a2']);
    expect(verifier.requests).to.deep.equal(['GET /version', 'GET /v2.1/agents']);
  });

  it('uses a fixed version without asking, and reads verify/evidence `valid` 1/0 (before 2.5) as a boolean', async function () {
    verifier.served = () => ['2.4'];
    const c = open({ apiVersion: '2.4' });
    expect((await c.verifyEvidence({})).valid).to.equal(true);
    expect(verifier.requests).to.deep.equal(['POST /v2.4/verify/evidence']);
  });
});
