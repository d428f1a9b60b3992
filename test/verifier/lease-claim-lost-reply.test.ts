import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { LeaseSweeper, type LeaseSweeperOptions, type SweptAgents } from '../../lib/verifier/lease-sweeper.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import type { VerdictStore } from '../../lib/verifier/verdict-store.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { VerifierProcessRepository } from '../../lib/verifier/verifier-process-repository.js';
import { useMigratedTestSchema } from '../helpers/migrated-test-schema.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { eventually } from './helpers/verifier-fixture.js';

const OWNER = 'claim-lost-reply';
const LEASE = 30;

/** The agents' repository whose next claim commits and then fails, as a claim whose reply the connection lost. */
class LostClaimReply extends VerifierAgentRepository {
  armed = false;

  constructor(knex: Knex) {
    super(knex);
    const claimFree = this.leases.claimFree.bind(this.leases);
    this.leases.claimFree = async (...args: Parameters<typeof claimFree>) => {
      const claimed = await claimFree(...args);
      if (!this.armed) return claimed;
      this.armed = false;
      throw new Error('Connection terminated unexpectedly');
    };
  }
}

/**
 * A claim stored by the database whose answer never reached the process (the connection cut after the
 * statement ran) leaves agents recorded as this process's, with a fresh lease, that it does not poll:
 * nobody attests them until the lease lapses (30 s by default, fifteen intervals). The next sweep must
 * take them up.
 */
describe('lease sweeper: a claim whose answer was lost (real PostgreSQL)', function () {
  this.timeout(30_000);
  const db = useMigratedTestSchema();

  /** A sweeper of `OWNER` over `repository` whose scheduler records what it adopts (`adopting` runs first) and the sweeps it tracks. */
  function sweeperOn(repository: VerifierAgentRepository, adopting: (agentId: string) => Promise<void> = () => Promise.resolve()) {
    const adopted: string[] = [];
    const tasks: Promise<void>[] = [];
    const agents = new Map<string, PolledAgent>();
    const health = new VerifierHealth();
    const options = {
      repository,
      processes: new VerifierProcessRepository(db.knex),
      health,
      verifierId: 'default',
      owner: OWNER,
      leaseSeconds: LEASE,
      round: { quoteInterval: 2 },
      log: pino({ level: 'silent' }),
    } as unknown as LeaseSweeperOptions;
    const scheduler: SweptAgents = {
      agents,
      verdicts: { isWaiting: () => false, waitingAgents: () => [] } as unknown as VerdictStore,
      isClosed: () => false,
      adopt: async (record: VerifierAgentRecord) => {
        await adopting(record.agentId);
        adopted.push(record.agentId);
        agents.set(record.agentId, { enrolment: { agentId: record.agentId }, running: false } as unknown as PolledAgent);
      },
      drop: (agentId) => void agents.delete(agentId),
      wake: () => undefined,
      reconcile: () => Promise.resolve(),
      track: (task) => void tasks.push(task),
    };
    return { sweeper: new LeaseSweeper(options, scheduler), adopted, tasks, health };
  }

  /** `agentId` stored as this owner's under a running lease (or as nobody's), as a claim or an enrolment whose answer was lost leaves it. */
  async function insertAgent(repository: VerifierAgentRepository, agentId: string, owner: string | null): Promise<void> {
    const enrolment = pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' });
    await repository.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), owner, LEASE);
  }

  it('polls the agents the lost claim took at the next sweep, not after their lease lapses', async function () {
    const repository = new LostClaimReply(db.knex);
    const { sweeper, adopted, tasks, health } = sweeperOn(repository);
    await sweeper.start();
    try {
      for (const agentId of ['lost-1', 'lost-2']) await insertAgent(repository, agentId, null);
      repository.armed = true;
      sweeper.sweepSoon();
      await Promise.all(tasks.splice(0));
      expect(health.problem(), 'the failed sweep is reported').to.match(/lease sweep failed/);
      const owners = (await db.knex('verifier_agents').whereIn('agent_id', ['lost-1', 'lost-2']).orderBy('agent_id').select('owner')) as { owner: string }[];
      expect(owners.map((row) => row.owner), 'the lost claim was stored').to.deep.equal([OWNER, OWNER]);
      expect(adopted, 'nothing polled yet').to.deep.equal([]);

      sweeper.sweepSoon();
      await Promise.all(tasks.splice(0));
      expect(health.problem()).to.equal(undefined);
      expect(adopted.sort(), 'polled from the next sweep').to.deep.equal(['lost-1', 'lost-2']);
      // Polled here once only: a third sweep adopts nothing again.
      sweeper.sweepSoon();
      await Promise.all(tasks.splice(0));
      expect(adopted).to.have.length(2);
    } finally {
      sweeper.stop();
      await Promise.all(tasks);
    }
  });

  it('takes up an agent given unseen while the sweep takes up an earlier one, at the sweep right after', async function () {
    const repository = new VerifierAgentRepository(db.knex);
    // A second enrolment commits with its answer lost while the sweep is taking up the first one.
    const { sweeper, adopted, tasks } = sweeperOn(repository, async (agentId) => {
      if (agentId !== 'unseen-1') return;
      await insertAgent(repository, 'unseen-2', OWNER);
      sweeper.takeBackSoon();
    });
    await sweeper.start();
    try {
      await insertAgent(repository, 'unseen-1', OWNER);
      sweeper.takeBackSoon();
      await eventually('both agents polled', async () => {
        await Promise.all(tasks.splice(0));
        return adopted.includes('unseen-2');
      }, 3_000, 50);
      expect(adopted.filter((agentId) => agentId.startsWith('unseen-')).sort()).to.deep.equal(['unseen-1', 'unseen-2']);
    } finally {
      sweeper.stop();
      await Promise.all(tasks);
    }
  });
});
