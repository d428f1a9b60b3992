import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { LeaseSweeper, type LeaseSweeperOptions, type SweptAgents } from '../../lib/verifier/lease-sweeper.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import type { VerdictStore } from '../../lib/verifier/verdict-store.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { VerifierProcessRepository } from '../../lib/verifier/verifier-process-repository.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';

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
  let opened: OpenedDatabase;
  let knex: Knex;

  before(async function () {
    opened = await openTestSchema();
    knex = opened.database.knex;
    await migrateLatest(knex);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('polls the agents the lost claim took at the next sweep, not after their lease lapses', async function () {
    const repository = new LostClaimReply(knex);
    const adopted: string[] = [];
    const tasks: Promise<void>[] = [];
    const agents = new Map<string, PolledAgent>();
    const health = new VerifierHealth();
    const options = {
      repository,
      processes: new VerifierProcessRepository(knex),
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
      adopt: (record: VerifierAgentRecord) => {
        adopted.push(record.agentId);
        agents.set(record.agentId, { enrolment: { agentId: record.agentId }, running: false } as unknown as PolledAgent);
        return Promise.resolve();
      },
      drop: (agentId) => void agents.delete(agentId),
      wake: () => undefined,
      reconcile: () => Promise.resolve(),
      track: (task) => void tasks.push(task),
    };
    const sweeper = new LeaseSweeper(options, scheduler);
    await sweeper.start();
    try {
      for (const agentId of ['lost-1', 'lost-2']) {
        const enrolment = pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion: '2.6' });
        await repository.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), null, LEASE);
      }
      repository.armed = true;
      sweeper.sweepSoon();
      await Promise.all(tasks.splice(0));
      expect(health.problem(), 'the failed sweep is reported').to.match(/lease sweep failed/);
      const owners = (await knex('verifier_agents').orderBy('agent_id').select('owner')) as { owner: string }[];
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
});
