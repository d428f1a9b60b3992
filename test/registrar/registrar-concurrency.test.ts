import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import {
  adminClient,
  createRegistrarTestEnvironment,
  startTestRegistrar,
  type RegistrarTestEnvironment,
} from './helpers/registrar-fixture.js';
import { activateCredential, authTagFor, generateTestKey, type TestKey } from './helpers/test-tpm-identity.js';

const AGENTS = 200;
/** Distinct TPM identities the agents share: RSA key generation, not the registrar, would dominate otherwise. */
const IDENTITIES = 4;

describe('registrar: 200 concurrent registrations on PostgreSQL', function () {
  let env: RegistrarTestEnvironment;
  let admin: Knex;
  let schema: string;
  let database: Database;
  let registrar: RunningRegistrar;
  let client: RegistrarClient;
  const identities: { ek: TestKey; ekCert: Uint8Array; ak: TestKey }[] = [];

  before(async function () {
    env = await createRegistrarTestEnvironment();
    for (let i = 0; i < IDENTITIES; i += 1) {
      const ek = generateTestKey('rsa', 'ek');
      identities.push({ ek, ekCert: env.ekCa.issue(ek.publicKey), ak: generateTestKey('ecc', 'ak') });
    }
    schema = `test_${randomBytes(8).toString('hex')}`;
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: env.dataDir, searchPath: schema });
    // Identities are shared by many agent ids here (key generation dominates otherwise).
    registrar = await startTestRegistrar(env, database, { maxAgentsPerEk: 1000 });
    client = new RegistrarClient({ baseUrl: registrar.httpUrl });
  });

  after(async function () {
    client?.close();
    await registrar?.close();
    await database?.close();
    await admin?.raw('drop schema if exists ?? cascade', [schema]);
    await admin?.destroy();
    env?.dispose();
  });

  it('registers and activates every agent without an error and reports the rate', async function () {
    type Agent = { id: string; ek: TestKey; ekCert: Uint8Array; ak: TestKey };
    const agents: Agent[] = Array.from({ length: AGENTS }, (_, i) => ({ id: randomUUID(), ...identities[i % IDENTITIES]! }));
    const register = (agent: Agent): Promise<Uint8Array> =>
      client.register(agent.id, { ekPublic: agent.ek.tpm2bPublic, ekCertificate: agent.ekCert, akPublic: agent.ak.tpm2bPublic });
    // Warm-up (JIT, connection pool), not timed: a few agents registered, then deleted again.
    const warmUp = Array.from({ length: 10 }, (_, i) => ({ ...agents[i]!, id: `warm-up-${i}` }));
    await Promise.all(warmUp.map(register));
    const tenant = adminClient(env, registrar);
    await Promise.all(warmUp.map((agent) => tenant.delete(agent.id)));

    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    const blobs = await Promise.all(agents.map(register));
    const registerMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    // CPU of this process (client + registrar; PostgreSQL runs elsewhere), per registration: unlike the
    // wall-clock rate it does not depend on what else the machine is doing.
    const cpuMsPerRegistration = (cpu.user + cpu.system) / 1000 / AGENTS;

    // The agents' side (RSA-OAEP decryption of each seed) runs outside the timed windows.
    const tags = agents.map((agent, i) => authTagFor(activateCredential(agent.ek, agent.ak.name, blobs[i]!), agent.id));
    const activationStart = performance.now();
    await Promise.all(agents.map((agent, i) => client.activate(agent.id, tags[i]!)));
    const activateMs = performance.now() - activationStart;

    try {
      const ids = await tenant.list();
      expect(ids).to.have.length(AGENTS);
      expect(new Set(ids)).to.deep.equal(new Set(agents.map((agent) => agent.id)));
      const sample = agents[AGENTS - 1]!;
      expect((await tenant.show(sample.id)).regcount).to.equal(1);
    } finally {
      tenant.close();
    }
    const rate = (count: number, ms: number): string => (count / (ms / 1000)).toFixed(0);
    console.log(
      `      registrar on PostgreSQL: ${AGENTS} concurrent registrations in ${registerMs.toFixed(0)} ms ` +
        `= ${rate(AGENTS, registerMs)} registrations/s; ${AGENTS} activations in ${activateMs.toFixed(0)} ms ` +
        `= ${rate(AGENTS, activateMs)}/s; ${cpuMsPerRegistration.toFixed(1)} ms CPU per registration ` +
        `(client and registrar in one process, loopback HTTP, EK certificate check on, ${IDENTITIES} RSA-2048 ` +
        `EKs shared by the agents)`,
    );
  });
});
