import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { TPM_IDENTITY } from './helpers/stored-identity.js';
import { DEFAULT_REGISTRATION_LIMITS, RegistrarAgentRepository, type StoredAgent } from '../../lib/registrar/registrar-agent-repository.js';
import { RegistrationConflict } from '../../lib/registrar/registrar-errors.js';
import { forEachDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';

function record(overrides: Partial<Omit<StoredAgent, 'agentId'>> = {}): Omit<StoredAgent, 'agentId'> {
  return {
    ekTpm: 'AAEC',
    ekCert: null,
    aikTpm: 'AwQF',
    activationKey: 'a2V5',
    active: false,
    ip: '127.0.0.1',
    port: 9002,
    mtlsCert: 'disabled',
    pendingContact: null,
    regcount: 1,
    ...TPM_IDENTITY,
    ...overrides,
  };
}

forEachDatabase(
  'registrar agent repository',
  (fixture) => {
    let repo: RegistrarAgentRepository;
    beforeEach(function () {
      repo = new RegistrarAgentRepository(fixture.database.knex);
    });

    it('inserts, finds, lists and deletes a record', async function () {
      const id = randomUUID();
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, (current) => {
        expect(current).to.equal(undefined);
        return record();
      });
      expect(await repo.find(id)).to.deep.equal({ agentId: id, ...record() });
      expect(await repo.listIds()).to.include(id);
      expect(await repo.delete(id)).to.equal(true);
      expect(await repo.delete(id)).to.equal(false);
      expect(await repo.find(id)).to.equal(undefined);
    });

    it('hands the stored record to the decision and updates it', async function () {
      const id = randomUUID();
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, (current) => {
        expect(current?.activationKey).to.equal('a2V5');
        return record({ activationKey: 'bmV3', regcount: (current?.regcount ?? 0) + 1 });
      });
      const stored = await repo.find(id);
      expect(stored?.activationKey).to.equal('bmV3');
      expect(stored?.regcount).to.equal(2);
    });

    it('leaves the row untouched when the decision throws', async function () {
      const id = randomUUID();
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      const refusal = new RegistrationConflict('different EK');
      let caught: unknown;
      try {
        await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => {
          throw refusal;
        });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.equal(refusal);
      expect(await repo.find(id)).to.deep.equal({ agentId: id, ...record() });
    });

    it('stores the record the activation decision returns, and nothing when it throws', async function () {
      const good = randomUUID();
      const bad = randomUUID();
      await repo.register(good, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      await repo.register(bad, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      const activated = await repo.activate(good, (current) => ({ ...current, active: true }));
      expect(activated).to.deep.equal({ outcome: 'updated', agent: { agentId: good, ...record({ active: true }) } });
      expect((await repo.find(good))?.active).to.equal(true);
      const refusal = await repo.activate(bad, () => {
        throw new Error('wrong proof');
      }).catch((error: unknown) => error);
      expect(refusal).to.have.property('message', 'wrong proof');
      expect(await repo.find(bad)).to.deep.equal({ agentId: bad, ...record() });
      expect(await repo.activate(randomUUID(), (current) => ({ ...current, active: true }))).to.deep.equal({ outcome: 'not-found' });
    });

    it('round-trips pending contact details, null fields included', async function () {
      const id = randomUUID();
      const pendingContact = { ip: null, port: 9100, mtlsCert: null };
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record({ active: true, pendingContact }));
      expect((await repo.find(id))?.pendingContact).to.deep.equal(pendingContact);
    });

    it('serialises concurrent registrations of one new id and one EK: each is judged against the record before it', async function () {
      if (fixture.kind === 'pglite') {
        // PGlite has one connection, so transactions never overlap and there is no race to lose.
        this.skip();
      }
      const id = randomUUID();
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record())),
      );
      const rejected = results.filter((result) => result.status === 'rejected');
      expect(results.some((result) => result.status === 'fulfilled')).to.equal(true);
      for (const failure of rejected) {
        expect((failure as PromiseRejectedResult).reason).to.be.instanceOf(RegistrationConflict);
        expect((failure as PromiseRejectedResult).reason.code).to.equal('ERR_REGISTRATION_CONFLICT');
      }
      expect((await repo.find(id))?.regcount).to.equal(1);
    });

    it('serialises registrations of one new id with other EKs: the later is judged against the earlier, never refused by the race', async function () {
      if (fixture.kind === 'pglite') this.skip();
      const knex = fixture.database.knex;
      const id = randomUUID();
      // An uncommitted row under the id: both registrations find no row and reach their insert before it goes.
      const blocker = await knex.transaction();
      const blockerPid = await backendPid(blocker);
      await blocker('registrar_agents').insert({ agent_id: id, ek_tpm: 'AAEC', ek_key_hash: 'c'.repeat(64), aik_tpm: 'AwQF', activation_key: '' });
      const judged: Array<string | null | undefined> = [];
      const registration = (ekTpm: string): Promise<StoredAgent> =>
        repo.register(id, { ekKeyHash: ekTpm.repeat(16), hostIdHash: null }, (current) => {
          judged.push(current?.ekTpm);
          if (current !== undefined && current.ekTpm !== ekTpm) throw new RegistrationConflict('Agent re-registration with different TPM identity is forbidden');
          return record({ ekTpm });
        });
      const first = registration('AAAA');
      await waitForLockWaiters(knex, blockerPid, 1);
      const second = registration('BBBB');
      await waitForLockWaiters(knex, blockerPid, 2);
      await blocker.rollback();
      const [won, lost] = await Promise.allSettled([first, second]);
      expect(won?.status).to.equal('fulfilled');
      expect((lost as PromiseRejectedResult).reason).to.have.property('message', 'Agent re-registration with different TPM identity is forbidden');
      expect(judged).to.deep.equal([undefined, 'AAAA']);
    });

    it('serialises a TPM registration naming a host id with a host-only one: the later judges against the earlier', async function () {
      if (fixture.kind === 'pglite') this.skip();
      const knex = fixture.database.knex;
      const host = randomBytes(32).toString('hex');
      const tpmId = randomUUID();
      const hostOnlyId = randomUUID();
      // An uncommitted row under the TPM registration's id: its insert waits on it, holding every lock it took.
      const blocker = await knex.transaction();
      const blockerPid = await backendPid(blocker);
      await blocker('registrar_agents').insert({ agent_id: tpmId, ek_tpm: 'AAEC', ek_key_hash: 'c'.repeat(64), aik_tpm: 'AwQF', activation_key: '' });
      const first = repo.register(tpmId, { ekKeyHash: 'AAEC', hostIdHash: host }, () => record({ hostIdHash: host }));
      await waitForLockWaiters(knex, blockerPid, 1);
      let seen: string[] | undefined;
      const second = repo.register(hostOnlyId, { ekKeyHash: null, hostIdHash: host }, (_current, sameHost) => {
        seen = sameHost.map((agent) => agent.agentId);
        return record({ ekTpm: null, aikTpm: null, identityMode: 'id-only', trustLevel: 'id-only', hostIdHash: host, active: true });
      });
      // Serialised, the host-only registration waits behind the TPM one; unserialised, it is already done.
      await Promise.race([second, waitForLockWaiters(knex, blockerPid, 2)]);
      await blocker.rollback();
      await first;
      await second;
      expect(seen).to.deep.equal([tpmId]);
    });

    it('serialises an activation with the registrations of its host id, and hands it the live records of that host id', async function () {
      if (fixture.kind === 'pglite') this.skip();
      const { knex } = fixture.database;
      const host = randomBytes(32).toString('hex');
      const [activating, holder] = [randomUUID(), randomUUID()].sort();
      const secret = { ekTpm: null, aikTpm: null, identityMode: 'id-secret', trustLevel: 'id-secret', hostIdHash: host, hostProofKey: 'ab'.repeat(32) } as const;
      await repo.register(activating as string, { ekKeyHash: null, hostIdHash: host }, () => record(secret));
      await repo.register(holder as string, { ekKeyHash: null, hostIdHash: host }, () => record({ ...secret, active: true }));
      // A registration of the same host id in flight: it holds the host's lock.
      const registering = await knex.transaction();
      try {
        await registering.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`registrar-host:${host}`]);
        let seen: string[] | undefined;
        const activation = repo.activate(activating as string, (current, sameHost) => {
          seen = sameHost.map((agent) => agent.agentId);
          return { ...current, active: true };
        });
        // Serialised, the activation waits for the registration; unserialised, it is already done.
        await Promise.race([activation, waitForLockWaiters(knex, await backendPid(registering), 1)]);
        expect(seen).to.equal(undefined);
        await registering.commit();
        expect((await activation).outcome).to.equal('updated');
        expect(seen).to.deep.equal([activating, holder]);
      } finally {
        if (!registering.isCompleted()) await registering.rollback();
      }
    });

    it('a registration does not hold an expired row while it waits for its EK lock (no deadlock)', async function () {
      // PGlite has one connection: transactions never overlap.
      if (fixture.kind === 'pglite') this.skip();
      const { knex } = fixture.database;
      // Advisory locks are database-wide, shared with every other test: a key of our own.
      const ekKeyHash = randomBytes(32).toString('hex');
      const key = { ekKeyHash, hostIdHash: null };
      const expired = randomUUID();
      await repo.register(expired, key, () => record());
      await knex('registrar_agents').where({ agent_id: expired }).update({ updated_at: knex.raw("now() - interval '2 hours'") });

      // Another registration of this EK, re-registering the expired id: it holds the EK lock and next
      // locks the expired row, as `register` does.
      const other = await knex.transaction();
      try {
        await other.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`registrar-ek:${ekKeyHash}`]);
        const registering = repo.register(randomUUID(), key, () => record());
        const settled = Promise.allSettled([registering]);
        await waitForLockWaiters(knex, await backendPid(other), 1);
        // Had the waiting registration removed the expired row inside its transaction, it would hold that
        // row: this lock would wait for it while it waits for ours, and PostgreSQL would abort one of us.
        const locked = await other('registrar_agents').where({ agent_id: expired }).forUpdate().select('agent_id');
        expect(locked).to.deep.equal([]);
        await other.commit();
        const [outcome] = await settled;
        expect(outcome?.status).to.equal('fulfilled');
      } finally {
        if (!other.isCompleted()) await other.rollback();
      }
      expect(await repo.find(expired)).to.equal(undefined);
    });

    it('does not activate an expired record still in place', async function () {
      const { knex } = fixture.database;
      const expired = randomUUID();
      await repo.register(expired, { ekKeyHash: randomBytes(32).toString('hex'), hostIdHash: null }, () => record());
      await knex('registrar_agents').where({ agent_id: expired }).update({ updated_at: knex.raw("now() - interval '2 hours'") });
      expect(await repo.activate(expired, (current) => ({ ...current, active: true }))).to.deep.equal({ outcome: 'not-found' });
      expect(await repo.find(expired)).to.equal(undefined);
    });

    it('does not count an expired record the cleanup skipped because another transaction held it', async function () {
      if (fixture.kind === 'pglite') this.skip();
      const { knex } = fixture.database;
      const limited = new RegistrarAgentRepository(knex, { ...DEFAULT_REGISTRATION_LIMITS, maxAgentsPerEk: 1 });
      const key = { ekKeyHash: randomBytes(32).toString('hex'), hostIdHash: null };
      const expired = randomUUID();
      await limited.register(expired, key, () => record());
      await knex('registrar_agents').where({ agent_id: expired }).update({ updated_at: knex.raw("now() - interval '2 hours'") });
      const holder = await knex.transaction();
      try {
        await holder('registrar_agents').where({ agent_id: expired }).forUpdate().select('agent_id');
        const fresh = randomUUID();
        await limited.register(fresh, key, () => record());
        expect((await limited.find(fresh))?.agentId).to.equal(fresh);
      } finally {
        await holder.rollback();
      }
    });
  },
  { migrate: true },
);
