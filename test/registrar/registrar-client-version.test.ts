import { expect } from 'chai';
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
});
