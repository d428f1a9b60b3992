import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Database } from '../../lib/db/database-factory.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { openSchemaThroughPort } from '../helpers/databases.js';
import { useMigratedTestSchema } from '../helpers/migrated-test-schema.js';
import { StatementCutProxy } from '../helpers/statement-cut-proxy.js';
import { useSoftwareTpmEnvironment } from './helpers/software-tpm-environment.js';
import { adminClient, refusal, startTestRegistrar } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

/**
 * PostgreSQL goes away (a TCP proxy cuts every connection) at the very statement that stores a
 * registration or an activation. The registrar must leave nothing half-done that a verifier would
 * trust: the agent gets a server error it retries, nothing is stored, and once the database is back
 * the agent's retry succeeds.
 */
describe('registrar: the database cut while it stores a registration or an activation (TCP proxy, real PostgreSQL)', function () {
  this.timeout(60_000);
  const setup = useSoftwareTpmEnvironment();
  const schema = useMigratedTestSchema();
  let proxy: StatementCutProxy;
  let database: Database;
  let registrar: RunningRegistrar;
  let agent: RegistrarClient;
  let admin: RegistrarClient;

  before(async function () {
    proxy = new StatementCutProxy();
    await proxy.start();
    database = await openSchemaThroughPort(schema.knex, proxy.port, setup.env.dataDir);
    registrar = await startTestRegistrar(setup.env, database, { maxAgentsPerEk: 20 });
    agent = new RegistrarClient({ baseUrl: registrar.httpUrl });
    admin = adminClient(setup.env, registrar);
  });

  afterEach(function () {
    proxy.restore();
  });

  after(async function () {
    agent?.close();
    admin?.close();
    await registrar?.close();
    await proxy?.close();
    await database?.close();
  });

  const stored = (id: string) => schema.knex('registrar_agents').where({ agent_id: id }).first() as Promise<{ active: boolean } | undefined>;
  const registration = () => ({ ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' as const });

  it('a registration cut at its insert stores nothing and answers a server error; registered again afterwards, the agent activates', async function () {
    const id = randomUUID();
    proxy.cutAt('insert into "registrar_agents"');
    const refused = await refusal(agent.register(id, registration()));
    expect(proxy.cuts).to.equal(1);
    expect(refused.remoteHttpStatus).to.be.at.least(500);
    expect(await stored(id)).to.equal(undefined);
    proxy.restore();
    const blob = await agent.register(id, registration());
    await agent.activate(id, authTagFor(await setup.tpm.activateCredential(blob), id));
    expect(await admin.show(id)).to.include({ agent_id: id });
  });

  it('an activation cut at its update leaves the agent inactive, unknown to a verifier; the same auth_tag activates it afterwards', async function () {
    const id = randomUUID();
    const blob = await agent.register(id, registration());
    const tag = authTagFor(await setup.tpm.activateCredential(blob), id);
    const cutsBefore = proxy.cuts;
    proxy.cutAt('update "registrar_agents"');
    const refused = await refusal(agent.activate(id, tag));
    expect(proxy.cuts).to.equal(cutsBefore + 1);
    expect(refused.remoteHttpStatus).to.be.at.least(500);
    proxy.restore();
    expect(await stored(id)).to.include({ active: false });
    expect((await refusal(admin.show(id))).remoteHttpStatus).to.equal(404);
    await agent.activate(id, tag);
    expect(await admin.show(id)).to.include({ agent_id: id });
  });

  it('a re-registration of an active agent cut at its update keeps the active record as it was', async function () {
    const id = randomUUID();
    const first = await agent.register(id, registration());
    await agent.activate(id, authTagFor(await setup.tpm.activateCredential(first), id));
    const before = await admin.show(id);
    proxy.cutAt('update "registrar_agents"');
    const refused = await refusal(agent.register(id, { ...registration(), port: 9003 }));
    expect(refused.remoteHttpStatus).to.be.at.least(500);
    proxy.restore();
    expect(await admin.show(id)).to.deep.equal(before);
    const again = await agent.register(id, { ...registration(), port: 9003 });
    await agent.activate(id, authTagFor(await setup.tpm.activateCredential(again), id));
    expect(await admin.show(id)).to.include({ port: 9003 });
  });
});
