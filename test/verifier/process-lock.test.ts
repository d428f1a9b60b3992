import { expect } from 'chai';
import type pg from 'pg';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { ProcessLock } from '../../lib/verifier/process-lock.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierProcessRepository } from '../../lib/verifier/verifier-process-repository.js';
import { forEachDatabase } from '../helpers/databases.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';

const LEASE = 30;
const silent = pino({ level: 'silent' });

/** Inserts `count` polled pull agents held by `owner` with a fresh 30 s lease; resolves to their ids. */
async function agentsOf(repository: VerifierAgentRepository, owner: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, i) => `${owner}-agent-${i}`);
  for (const agentId of ids) {
    await repository.insert(
      pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{}', akTpm: 'ak', mtlsCert: null, supportedVersion: '2.2' }),
      initialAgentState(OperationalState.GET_QUOTE),
      owner,
      LEASE,
    );
  }
  return ids;
}

/**
 * The process lock as the liveness signal (issue 10 §5): a process whose lock session ended is dead at
 * once — its agents are claimable though their leases have 30 s left, and it is not counted in the fair
 * share — while a process holding its lock, or one that recorded no key (PGlite, a lost lock
 * connection), is judged by heartbeat and leases as before.
 */
forEachDatabase('verifier process lock: who is dead', (fixture) => {
  let agents: VerifierAgentRepository;
  let processes: VerifierProcessRepository;
  const locks: ProcessLock[] = [];

  beforeEach(async function () {
    const { knex } = fixture.database;
    await knex('verifier_agents').delete();
    await knex('verifier_processes').delete();
    agents = new VerifierAgentRepository(knex);
    processes = new VerifierProcessRepository(knex);
  });

  after(async function () {
    await Promise.all(locks.map((lock) => lock.close()));
  });

  /** A process's lock on PostgreSQL (its own connection), taken. */
  async function lockFor(): Promise<ProcessLock> {
    const { newSessionClient } = fixture.database;
    if (newSessionClient === undefined) throw new Error('PostgreSQL only');
    const lock = new ProcessLock({ newClient: newSessionClient, log: silent });
    locks.push(lock);
    expect(await lock.take(() => undefined)).to.equal(true);
    return lock;
  }

  it('a process that recorded no lock key is never dead by lock: its leases and beat decide', async function () {
    await processes.beat('proc-c', 'default', null);
    await processes.beat('proc-b', 'default', null);
    await agentsOf(agents, 'proc-c', 3);
    expect(await agents.claimFree('default', 'proc-b', LEASE, 10, [])).to.have.length(0);
    expect(await processes.population('default', LEASE)).to.deep.equal({ liveProcesses: 2, claimableAgents: 3 });
    expect((await processes.watch('default', 'proc-b', null)).deadOwners).to.deep.equal([]);
  });

  it('PGlite holds no lock', function () {
    if (fixture.kind === 'pglite') expect(fixture.database.newSessionClient).to.equal(undefined);
    else expect(fixture.database.newSessionClient).to.be.a('function');
  });

  it('while A\'s lock session lives A is alive; once it ends, B claims A\'s agents though their leases have 30 s left', async function () {
    if (fixture.kind === 'pglite') this.skip();
    const a = await lockFor();
    const b = await lockFor();
    expect(a.key).to.not.equal(null);
    expect(a.key).to.not.equal(b.key);
    await processes.beat('proc-a', 'default', a.key);
    await processes.beat('proc-b', 'default', b.key);
    const held = await agentsOf(agents, 'proc-a', 4);

    expect(await processes.population('default', LEASE)).to.deep.equal({ liveProcesses: 2, claimableAgents: 4 });
    expect(await processes.watch('default', 'proc-b', b.key)).to.deep.equal({ deadOwners: [], ownLockHeld: true });
    expect(await agents.claimFree('default', 'proc-b', LEASE, 10, [])).to.have.length(0);

    await a.close();
    expect(a.key).to.equal(null);
    expect(await processes.population('default', LEASE)).to.deep.equal({ liveProcesses: 1, claimableAgents: 4 });
    expect(await processes.watch('default', 'proc-b', b.key)).to.deep.equal({ deadOwners: ['proc-a'], ownLockHeld: true });
    // A process never judges itself dead by the watch, nor claims its own agents as a dead owner's.
    expect((await processes.watch('default', 'proc-a', null)).deadOwners).to.deep.equal([]);
    expect(await agents.claimFree('default', 'proc-a', LEASE, 10, [])).to.have.length(0);

    const claimed = await agents.claimFree('default', 'proc-b', LEASE, 10, []);
    expect(claimed.map((record) => record.agentId).sort()).to.deep.equal(held);
    // Nothing of A's left to claim: the watch deletes A's row and reports nobody.
    expect(await processes.watch('default', 'proc-b', b.key)).to.deep.equal({ deadOwners: [], ownLockHeld: true });
    const rows = (await fixture.database.knex('verifier_processes').select('owner')) as { owner: string }[];
    expect(rows.map((row) => row.owner)).to.deep.equal(['proc-b']);
  });

  it('takes no lock through a pooler (a cancel key that is not the backend\'s pid), and does not retry', async function () {
    const { newSessionClient } = fixture.database;
    if (newSessionClient === undefined) this.skip();
    let opened = 0;
    /** What pgbouncer does: its own cancel key, whose pid is no server backend's. */
    const pooled = (): pg.Client => {
      opened += 1;
      const client = newSessionClient();
      const connect = client.connect.bind(client);
      client.connect = (async () => {
        const connected = await connect();
        (client as unknown as { processID: number }).processID = -1;
        return connected;
      }) as typeof client.connect;
      return client;
    };
    const lock = new ProcessLock({ newClient: pooled, log: silent });
    locks.push(lock);
    expect(await lock.take(() => undefined)).to.equal(false);
    expect(lock.key).to.equal(null);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(opened).to.equal(1);
  });

  it('the watch says when the lock of the key asked about is not held', async function () {
    if (fixture.kind === 'pglite') this.skip();
    const a = await lockFor();
    const key = a.key;
    await a.close();
    expect((await processes.watch('default', 'proc-a', key)).ownLockHeld).to.equal(false);
  });
}, { migrate: true });
