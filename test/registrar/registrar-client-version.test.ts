import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { IronlimeError } from '../../interfaces/errors.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { FakeKeylime } from '../driver/fake-keylime.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
const RECORD = { agent_id: AGENT, ek_tpm: null, ekcert: null, aik_tpm: null, mtls_cert: null, ip: '127.0.0.1', port: 9002, regcount: 1 };
/** `GET /version` of a Keylime 7.14 registrar: its router serves exactly these versions (`api_version.all_versions()`). */
const KEYLIME_7_14_VERSION = { current_version: '2.5', supported_versions: ['1.0', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '3.0'] };

/**
 * The registrar client's API version. It sent every request to `/v2.6/…`, a version no Keylime
 * registrar up to 7.14 serves (their routers answer 404 for it), so the tenant could read no agent
 * from a Keylime 7.x registrar. It now negotiates as the verifier client does.
 */
describe('registrar client: API version negotiation', function () {
  const fake = new FakeKeylime();

  before(async function () {
    await fake.start();
  });
  after(async function () {
    await fake.stop();
  });
  beforeEach(function () {
    fake.routes.clear();
    fake.requests.length = 0;
  });

  it('reads an agent from a registrar whose highest version is 2.5 (Keylime 7.14) at /v2.5', async function () {
    fake.routes.set('GET /version', () => [200, KEYLIME_7_14_VERSION]);
    fake.routes.set(`GET /v2.5/agents/${AGENT}`, () => [200, RECORD]);
    fake.routes.set('GET /v2.5/agents', () => [200, { uuids: [AGENT] }]);
    const client = new RegistrarClient({ baseUrl: fake.url });
    try {
      expect(await client.show(AGENT)).to.include({ agent_id: AGENT, port: 9002 });
      expect(await client.list()).to.deep.equal([AGENT]);
      // Asked once per client.
      expect(fake.requests.filter((r) => r === 'GET /version')).to.have.length(1);
    } finally {
      client.close();
    }
  });

  it('speaks 2.1 to a registrar without /version (Keylime before 7.12)', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, RECORD]);
    const client = new RegistrarClient({ baseUrl: fake.url });
    try {
      expect(await client.show(AGENT)).to.include({ agent_id: AGENT });
    } finally {
      client.close();
    }
  });

  it('asks nothing when the version is fixed', async function () {
    fake.routes.set(`GET /v2.6/agents/${AGENT}`, () => [200, RECORD]);
    const client = new RegistrarClient({ baseUrl: fake.url, apiVersion: '2.6' });
    try {
      expect(await client.show(AGENT)).to.include({ agent_id: AGENT });
      expect(fake.requests).to.deep.equal([`GET /v2.6/agents/${AGENT}`]);
    } finally {
      client.close();
    }
  });

  it('refuses a registrar with no version in common (ERR_UNSUPPORTED_API_VERSION), and asks again at the next call', async function () {
    fake.routes.set('GET /version', () => [200, { current_version: '3.0', supported_versions: ['3.0'] }]);
    const client = new RegistrarClient({ baseUrl: fake.url });
    try {
      for (let call = 0; call < 2; call += 1) {
        const failure = await client.show(AGENT).catch((error: unknown) => error);
        expect(failure).to.be.instanceOf(IronlimeError).with.property('code', 'ERR_UNSUPPORTED_API_VERSION');
      }
      expect(fake.requests).to.deep.equal(['GET /version', 'GET /version']);
    } finally {
      client.close();
    }
  });

  it('asks again and sends once more when a registrar replaced by an older one refuses the version ("API Version not supported")', async function () {
    let served = ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'];
    const seen: string[] = [];
    // A registrar as ironlime's and Keylime's Python one refuse a version they do not serve: 400, that status text.
    const registrar = createServer((request, response) => {
      const url = request.url ?? '';
      seen.push(`${request.method ?? ''} ${url}`);
      const version = /^\/v([0-9.]+)\//.exec(url)?.[1];
      const [code, status, results] =
        url === '/version'
          ? [200, 'Success', { current_version: served.at(-1), supported_versions: served }]
          : version !== undefined && !served.includes(version)
            ? [400, 'API Version not supported', {}]
            : [200, 'Success', RECORD];
      response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify({ code, status, results }));
    });
    await new Promise<void>((resolve) => registrar.listen(0, '127.0.0.1', resolve));
    const client = new RegistrarClient({ baseUrl: `http://127.0.0.1:${(registrar.address() as AddressInfo).port}` });
    try {
      expect(await client.show(AGENT)).to.include({ agent_id: AGENT });
      served = ['2.1', '2.2', '2.3', '2.4', '2.5'];
      expect(await client.show(AGENT)).to.include({ agent_id: AGENT });
      expect(seen).to.deep.equal(['GET /version', `GET /v2.6/agents/${AGENT}`, `GET /v2.6/agents/${AGENT}`, 'GET /version', `GET /v2.5/agents/${AGENT}`]);
      expect(await client.apiVersion()).to.equal('2.5');
    } finally {
      client.close();
      await new Promise((resolve) => registrar.close(resolve));
    }
  });
});
