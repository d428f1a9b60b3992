import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { DATABASE } from '../../lib/db/database-token.js';
import type { Database } from '../../lib/db/database-factory.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { forEachDatabase } from '../helpers/databases.js';
import { useSoftwareTpmEnvironment } from './helpers/software-tpm-environment.js';
import { adminClient, startTestRegistrar } from './helpers/registrar-fixture.js';
import { freshHostId } from './helpers/fresh-host-id.js';
import { authTagFor, generateTestKey } from './helpers/test-tpm-identity.js';

/** What a request came to: 'ok', or the HTTP status and text of the refusal. */
function outcomeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (error: unknown) => (error instanceof KeylimeHttpError ? `${error.remoteHttpStatus} ${error.status}` : String(error)),
  );
}

/**
 * Hunt H6: what anyone who knows a TPM's public EK, EK certificate and an agent id (Keylime's hash_ek,
 * a known UUID) can do to the genuine agent's registration and activation. Each test asserts that the
 * genuine agent is not locked out, nor its proven change silently dropped.
 */
describe('registrar: activation against anonymous interference (hunt H6)', function () {
  const setup = useSoftwareTpmEnvironment();

  forEachDatabase(
    'registrar: activation against anonymous interference',
    (fixture) => {
      let registrar: RunningRegistrar;
      let agent: RegistrarClient;
      let admin: RegistrarClient;

      before(async function () {
        registrar = await startTestRegistrar(setup.env, fixture.database, { maxAgentsPerEk: 3 });
        agent = new RegistrarClient({ baseUrl: registrar.httpUrl });
        admin = adminClient(setup.env, registrar);
      });

      after(async function () {
        agent?.close();
        admin?.close();
        await registrar?.close();
      });

      const register = (id: string, port: number): Promise<Uint8Array> =>
        agent.register(id, { ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, ip: '10.0.0.1', port, mtlsCert: 'disabled' });

      /** A registration by someone without the TPM: the victim's public EK and EK certificate, an AK of their own. */
      const squat = (id: string): Promise<Uint8Array> =>
        agent.register(id, { ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: generateTestKey('rsa', 'ak').tpm2bPublic, mtlsCert: 'disabled' });

      /** Ids a test registered, deleted after it whatever its outcome, so that a failure leaves no EK slot taken. */
      let used: string[] = [];
      const newId = (): string => {
        const id = randomUUID();
        used.push(id);
        return id;
      };

      afterEach(async function () {
        for (const id of used) await admin.delete(id).catch(() => undefined);
        used = [];
      });

      it('a wrong auth_tag does not cancel an active agent\'s proposed contact details: its right tag then puts them in force', async function () {
        const id = newId();
        await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        const credential = await setup.tpm.activateCredential(await register(id, 9003));
        expect(await outcomeOf(agent.activate(id, 'a'.repeat(96)))).to.equal(`400 auth_tag for agent '${id}' does not match; its proven contact details are kept`);
        expect(await admin.show(id)).to.include({ port: 9002 });
        await agent.activate(id, authTagFor(credential, id));
        expect(await admin.show(id)).to.include({ port: 9003 });
      });

      it('a wrong auth_tag does not delete a first registration: the genuine agent then activates it', async function () {
        const id = newId();
        const credential = await setup.tpm.activateCredential(await register(id, 9002));
        expect(await outcomeOf(agent.activate(id, 'b'.repeat(96)))).to.equal(`400 auth_tag for agent '${id}' does not match; the agent is not activated`);
        expect(await outcomeOf(agent.activate(id, authTagFor(credential, id)))).to.equal('ok');
        expect(await admin.show(id)).to.include({ agent_id: id, port: 9002 });
      });

      it('an accepted auth_tag is spent: the credential is no longer stored, the same tag again is 200 and changes nothing', async function () {
        const id = newId();
        const credential = await setup.tpm.activateCredential(await register(id, 9002));
        const tag = authTagFor(credential, id);
        await agent.activate(id, tag);
        const knex = registrar.container.resolve<Database>(DATABASE).knex;
        const stored = async (): Promise<{ activation_key: string; updated_at: Date }> =>
          knex('registrar_agents').select('activation_key', 'updated_at').where({ agent_id: id }).first();
        const before = await stored();
        expect(before.activation_key).to.not.equal(Buffer.from(credential).toString('base64'));
        // The Rust agent retries a PUT whose reply it lost: answered as done, nothing written.
        expect(await outcomeOf(agent.activate(id, tag.toUpperCase()))).to.equal('ok');
        expect(await stored()).to.deep.equal(before);
        // After a re-registration the old tag proves nothing: the proposed contact waits for the new challenge.
        await register(id, 9009);
        expect(await outcomeOf(agent.activate(id, tag))).to.match(/^400 /);
        expect(await admin.show(id)).to.include({ port: 9002 });
      });

      it('a never-activated squat with the victim\'s public EK and EK certificate does not lock the genuine agent out of its id', async function () {
        const id = newId(); // e.g. Keylime's hash_ek: predictable
        await squat(id);
        const credential = await setup.tpm.activateCredential(await register(id, 9002));
        await agent.activate(id, authTagFor(credential, id));
        expect(await admin.show(id)).to.include({ aik_tpm: Buffer.from(setup.ak.akPublic).toString('base64'), regcount: 2 });
        // Once activated, the same squat is refused.
        expect(await outcomeOf(squat(id))).to.match(/^403 Agent re-registration with different TPM identity is forbidden/);
      });

      it('never-activated squats under the victim\'s EK give way to a new id of the genuine TPM; activated ids still count', async function () {
        const squats = [newId(), newId(), newId()];
        for (const id of squats) await squat(id);
        const genuine = [newId(), newId(), newId()];
        for (const id of genuine) {
          await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        }
        const listed = await admin.list();
        expect(squats.filter((id) => listed.includes(id))).to.deep.equal([]);
        const extra = newId();
        expect(await outcomeOf(register(extra, 9002))).to.equal(
          `403 the EK of agent '${extra}' is already registered under 3 agent ids (at most 3), activated or being activated; delete one of them first`,
        );
      });

      it('a never-activated record without that EK cannot be turned into one more id of an EK whose ids are all activated', async function () {
        for (const id of [newId(), newId(), newId()]) {
          await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        }
        const other = newId();
        await agent.registerHost(other, { mode: 'id-secret', hostId: freshHostId(), hostProofKey: 'ab'.repeat(32), mtlsCert: 'disabled' });
        expect(await outcomeOf(register(other, 9002))).to.equal(
          `403 the EK of agent '${other}' is already registered under 3 agent ids (at most 3), activated or being activated; delete one of them first`,
        );
      });

      it('a squat between the genuine registration and its activation leaves nothing activated: the genuine tag answered the replaced challenge', async function () {
        const id = newId();
        const credential = await setup.tpm.activateCredential(await register(id, 9002));
        await squat(id);
        expect(await outcomeOf(agent.activate(id, authTagFor(credential, id)))).to.equal(`400 auth_tag for agent '${id}' does not match; the agent is not activated`);
        expect(await outcomeOf(admin.show(id))).to.match(/^404 /);
        // The genuine agent registers again (a Keylime agent restarts) and activates with its own AK.
        await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        expect(await admin.show(id)).to.include({ aik_tpm: Buffer.from(setup.ak.akPublic).toString('base64'), regcount: 3 });
      });

      it('a new id at the EK limit does not evict a never-activated record another transaction holds (an activation in progress)', async function () {
        if (fixture.kind !== 'postgres') this.skip(); // PGlite has one connection: no transaction runs beside another
        const knex = registrar.container.resolve<Database>(DATABASE).knex;
        const pending = newId();
        await register(pending, 9002);
        for (const id of [newId(), newId()]) {
          await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        }
        const extra = newId();
        let held: () => void = () => undefined;
        const release = new Promise<void>((resolve) => (held = resolve));
        let locked: () => void = () => undefined;
        const isLocked = new Promise<void>((resolve) => (locked = resolve));
        const holder = knex.transaction(async (trx) => {
          await trx('registrar_agents').select('agent_id').where({ agent_id: pending }).forUpdate();
          locked();
          await release;
        });
        await isLocked;
        try {
          expect(await outcomeOf(register(extra, 9002))).to.match(/^403 the EK of agent .* activated or being activated/);
        } finally {
          held();
          await holder;
        }
        expect(await admin.list()).to.include(pending);
      });

      it('a host id named by an earlier registration of the same public EK and AK is not carried into the record the genuine agent activates', async function () {
        const id = newId();
        const hostId = freshHostId();
        // Anyone who knows the TPM's EK and AK (both public) registers them first, naming another machine's host id.
        await agent.registerTpm(id, { ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, mtlsCert: 'disabled' }, 'tpm', hostId);
        // The genuine agent (Keylime's sends no host id) registers and activates.
        await agent.activate(id, authTagFor(await setup.tpm.activateCredential(await register(id, 9002)), id));
        expect((await admin.identity(id)).host_id_hash).to.equal(null);
        // So that machine is not locked out of its own host id by a hardware-tpm holder it never was.
        const host = newId();
        expect(await outcomeOf(agent.registerHost(host, { mode: 'id-secret', hostId, hostProofKey: 'ab'.repeat(32), mtlsCert: 'disabled' }))).to.equal('ok');
      });

      it('with maxAgentsPerNonTpmMode 0, an id-only registration cannot take a TPM agent\'s id between its registration and its activation', async function () {
        const tpmOnly = await startTestRegistrar(setup.env, fixture.database, { maxAgentsPerNonTpmMode: 0 });
        const client = new RegistrarClient({ baseUrl: tpmOnly.httpUrl });
        try {
          const id = newId();
          const credential = await setup.tpm.activateCredential(await client.register(id, { ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, ip: '10.0.0.1', port: 9002, mtlsCert: 'disabled' }));
          expect(await outcomeOf(client.registerHost(id, { mode: 'id-only', hostId: freshHostId(), ip: '6.6.6.6', port: 6666, mtlsCert: 'disabled' }))).to.match(/^403 /);
          expect(await outcomeOf(client.activate(id, authTagFor(credential, id)))).to.equal('ok');
          expect(await admin.show(id)).to.include({ identity_mode: 'tpm', ip: '10.0.0.1', port: 9002 });
        } finally {
          client.close();
          await tpmOnly.close();
        }
      });
    },
    { migrate: true },
  );
});
