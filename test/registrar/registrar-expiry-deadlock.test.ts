import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { StoredAgent } from '../../lib/registrar/registrar-agent-repository.js';
import { RegistrarAgentRepository } from '../../lib/registrar/registrar-agent-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { backendPid, waitForLockWaiters } from '../helpers/lock-waits.js';
import { TPM_IDENTITY } from './helpers/stored-identity.js';

function record(): Omit<StoredAgent, 'agentId'> {
  return {
    ekTpm: 'AAEC',
    ekCert: null,
    aikTpm: 'AwQF',
    activationKey: 'a2V5',
    active: false,
    ip: null,
    port: null,
    mtlsCert: null,
    pendingContact: null,
    regcount: 1,
    ...TPM_IDENTITY,
  };
}

forEachDatabase(
  'registrar: removing expired registrations beside concurrent ones',
  (fixture) => {
    let repo: RegistrarAgentRepository;
    beforeEach(function () {
      repo = new RegistrarAgentRepository(fixture.database.knex);
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
      const limited = new RegistrarAgentRepository(knex, { maxAgentsPerEk: 1, inactiveTtlSeconds: 3600 });
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
