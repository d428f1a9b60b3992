import { expect } from 'chai';
import { BadRemoteReplyError } from '../../lib/http/client-errors.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { FakeKeylime } from '../driver/fake-keylime.js';

const AGENT = 'asked-for-agent';
const CONTACT = { ip: '127.0.0.1', port: 9002, mtls_cert: null, regcount: 1 };
const SHOW = { ...CONTACT, ek_tpm: null, ekcert: null, aik_tpm: null, identity_mode: 'id-only', trust_level: 'id-only' };
const IDENTITY = { ...CONTACT, identity_mode: 'id-only', trust_level: 'id-only', host_id_hash: null, host_proof_key: null };

describe('registrar client: the record answered is the one asked for', function () {
  const fake = new FakeKeylime();
  let client: RegistrarClient;

  before(async function () {
    await fake.start();
    client = new RegistrarClient({ baseUrl: fake.url, apiVersion: '2.6' });
  });
  after(async function () {
    client.close();
    await fake.stop();
  });

  for (const [name, path, results, read] of [
    ['show', `GET /v2.6/agents/${AGENT}`, SHOW, (id: string) => client.show(id)],
    ['identity', `GET /v2.6/agents/${AGENT}/identity`, IDENTITY, (id: string) => client.identity(id)],
  ] as const) {
    it(`${name}: refuses another agent's record and returns the asked one`, async function () {
      fake.routes.set(path, () => [200, { ...results, agent_id: 'another-agent' }]);
      const error = await read(AGENT).then(() => undefined, (caught: unknown) => caught);
      expect(error).to.be.instanceOf(BadRemoteReplyError);
      expect((error as Error).message).to.equal(`registrar agent ${AGENT}: bad reply: the reply is the record of agent 'another-agent'`);
      fake.routes.set(path, () => [200, { ...results, agent_id: AGENT }]);
      expect(await read(AGENT)).to.include({ agent_id: AGENT, trust_level: 'id-only' });
    });
  }

  it('show: refuses a null trust_level or identity_mode as a bad reply (absent, the driver derives the level; null was taken as one)', async function () {
    const path = `GET /v2.6/agents/${AGENT}`;
    for (const field of ['trust_level', 'identity_mode']) {
      fake.routes.set(path, () => [200, { ...SHOW, agent_id: AGENT, [field]: null }]);
      const error = await client.show(AGENT).then(() => undefined, (caught: unknown) => caught);
      expect(error, field).to.be.instanceOf(BadRemoteReplyError);
    }
    const { trust_level: _level, identity_mode: _mode, ...keylime } = SHOW;
    fake.routes.set(path, () => [200, { ...keylime, agent_id: AGENT }]);
    expect((await client.show(AGENT)).trust_level).to.equal(undefined);
  });
});
