import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import { FailureAnnouncer } from '../../lib/verifier/failure-announcer.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import { RoundPersister, type AfterRound } from '../../lib/verifier/round-persister.js';
import { RoundWriter } from '../../lib/verifier/round-writer.js';
import { VerdictStore } from '../../lib/verifier/verdict-store.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { agentRowVersion } from './helpers/agent-row-version.js';
import { polledAgentInGetQuote } from './helpers/polled-agent-in-get-quote.js';
import { RecordedAfterRound } from './helpers/recorded-after-round.js';
import { bareVerdict } from './helpers/bare-verdict.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

const OWNER = 'persister-owner';

/**
 * A round whose agent refused the enrolled API version stores the negotiated one after its verdict
 * (`RoundPersister.storeApiVersion`). That write must leave the row version known, or the next
 * round's verdict is dropped and the row re-read: one round lost at every renegotiation. And it must
 * not overwrite an operator's change made since the verdict.
 */
describe('verifier pull loop: the renegotiated API version is stored over the verdict\'s row version (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let writer: RoundWriter;

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    writer = new RoundWriter(knex, { batchDelayMs: 0 });
  });

  after(async function () {
    await writer?.close();
    await opened?.dispose();
  });

  async function renegotiatedAgent(agentId: string): Promise<PolledAgent> {
    return polledAgentInGetQuote(knex, new VerifierAgentRepository(knex), agentId, OWNER, '2.0');
  }

  function passingRound(attestationCount: number): PullDecision {
    return { ...bareVerdict(OperationalState.GET_QUOTE, attestationCount), retries: 0, next: { kind: 'poll', inSeconds: 2 } };
  }

  function persisterFor(repository: VerifierAgentRepository, after: AfterRound): RoundPersister {
    const options = { repository, writer, health: new VerifierHealth(), verifierId: 'default', owner: OWNER, leaseSeconds: 30, round: ROUND_TEST_SETTINGS, log: pino({ level: 'silent' }) };
    return new RoundPersister(options, new VerdictStore(options), new FailureAnnouncer(undefined, () => []), after);
  }

  async function historyCount(agentId: string): Promise<number> {
    const row = (await knex('verifier_attestation_history').where({ agent_id: agentId }).count<{ n: string }[]>({ n: '*' }))[0];
    return Number(row?.n);
  }

  it('keeps the row version the version write left, so the next verdict is stored', async function () {
    const agent = await renegotiatedAgent('persister-api-version-1');
    const after = new RecordedAfterRound();
    const persister = persisterFor(new VerifierAgentRepository(knex), after);

    await persister.persist(agent, passingRound(1), performance.now());
    expect((await new VerifierAgentRepository(knex).find(agent.enrolment.agentId))?.supportedVersion).to.equal('2.6');
    expect(agent.rowVersion, 'the row version after the version write').to.equal(await agentRowVersion(knex, agent.enrolment.agentId));

    agent.running = true;
    await persister.persist(agent, passingRound(2), performance.now());
    expect(await historyCount(agent.enrolment.agentId), 'both verdicts stored').to.equal(2);
    expect(after.steps).to.deep.equal(['schedule', 'schedule']);
  });

  it('leaves a row an operator changed after the verdict alone, and re-reads it', async function () {
    const agent = await renegotiatedAgent('persister-api-version-2');
    const after = new RecordedAfterRound();
    const operatorFirst = new (class extends VerifierAgentRepository {
      override async updateSupportedVersion(agentId: string, owner: string, rowVersion: string, version: string): Promise<string | undefined> {
        await knex('verifier_agents').update({ tpm_policy: '{"mask": "0x408"}' }).where({ agent_id: agentId });
        return super.updateSupportedVersion(agentId, owner, rowVersion, version);
      }
    })(knex);

    await persisterFor(operatorFirst, after).persist(agent, passingRound(1), performance.now());
    const row = await new VerifierAgentRepository(knex).find(agent.enrolment.agentId);
    expect(row?.supportedVersion, 'the operator\'s row is not written over').to.equal('2.0');
    expect(row?.tpmPolicy).to.equal('{"mask": "0x408"}');
    expect(await historyCount(agent.enrolment.agentId)).to.equal(1);
    expect(after.steps).to.deep.equal(['reconcile']);
  });
});
