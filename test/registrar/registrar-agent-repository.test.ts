import { randomBytes, randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { expect } from 'chai';
import { TPM_IDENTITY } from './helpers/stored-identity.js';
import { RegistrarAgentRepository, type StoredAgent } from '../../lib/registrar/registrar-agent-repository.js';
import { RegistrationConflict } from '../../lib/registrar/registrar-errors.js';
import { forEachDatabase } from '../helpers/databases.js';

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

    it('stores the record the activation decision returns, or deletes it', async function () {
      const good = randomUUID();
      const bad = randomUUID();
      await repo.register(good, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      await repo.register(bad, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record());
      const activated = await repo.activate(good, (current) => ({ ...current, active: true }));
      expect(activated).to.deep.equal({ outcome: 'updated', agent: { agentId: good, ...record({ active: true }) } });
      expect((await repo.find(good))?.active).to.equal(true);
      expect(await repo.activate(bad, () => 'delete')).to.deep.equal({ outcome: 'deleted' });
      expect(await repo.find(bad)).to.equal(undefined);
      expect(await repo.activate(randomUUID(), () => 'delete')).to.deep.equal({ outcome: 'not-found' });
    });

    it('round-trips pending contact details, null fields included', async function () {
      const id = randomUUID();
      const pendingContact = { ip: null, port: 9100, mtlsCert: null };
      await repo.register(id, { ekKeyHash: 'AAEC', hostIdHash: null }, () => record({ active: true, pendingContact }));
      expect((await repo.find(id))?.pendingContact).to.deep.equal(pendingContact);
    });

    it('serialises concurrent registrations of one new id: the loser gets RegistrationConflict', async function () {
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

    it('serialises a TPM registration naming a host id with a host-only one: the later judges against the earlier', async function () {
      if (fixture.kind === 'pglite') this.skip();
      const knex = fixture.database.knex;
      const host = randomBytes(32).toString('hex');
      const tpmId = randomUUID();
      const hostOnlyId = randomUUID();
      // An uncommitted row under the TPM registration's id: its insert waits on it, holding every lock it took.
      const blocker = await knex.transaction();
      const blockerPid = Number(((await blocker.raw('SELECT pg_backend_pid() AS pid')) as { rows: { pid: number }[] }).rows[0]?.pid);
      await blocker('registrar_agents').insert({ agent_id: tpmId, ek_tpm: 'AAEC', ek_key_hash: 'c'.repeat(64), aik_tpm: 'AwQF', activation_key: '' });
      const first = repo.register(tpmId, { ekKeyHash: 'AAEC', hostIdHash: host }, () => record({ hostIdHash: host }));
      await waitForWaiters(knex, blockerPid, 1);
      let seen: string[] | undefined;
      const second = repo.register(hostOnlyId, { ekKeyHash: null, hostIdHash: host }, (_current, sameHost) => {
        seen = sameHost.map((agent) => agent.agentId);
        return record({ ekTpm: null, aikTpm: null, identityMode: 'id-only', trustLevel: 'id-only', hostIdHash: host, active: true });
      });
      // Serialised, the host-only registration waits behind the TPM one; unserialised, it is already done.
      await Promise.race([second, waitForWaiters(knex, blockerPid, 2)]);
      await blocker.rollback();
      await first;
      await second;
      expect(seen).to.deep.equal([tpmId]);
    });
  },
  { migrate: true },
);

/** Resolves once `count` backends wait on `blockerPid`, directly or behind one that does. */
async function waitForWaiters(knex: Knex, blockerPid: number, count: number): Promise<void> {
  for (;;) {
    const result = (await knex.raw(
      `WITH direct AS (SELECT pid FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid)))
       SELECT (SELECT count(*) FROM direct) + (SELECT count(*) FROM pg_stat_activity a
         WHERE EXISTS (SELECT 1 FROM direct d WHERE d.pid = ANY(pg_blocking_pids(a.pid)))) AS n`,
      [blockerPid],
    )) as { rows: { n: string }[] };
    if (Number(result.rows[0]?.n) >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
