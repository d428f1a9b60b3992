import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { RepeatedTexts } from '../../lib/http/repeated-member-json.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import { PolicyCache } from '../../lib/verifier/policy-cache.js';
import { PullScheduler } from '../../lib/verifier/pull-scheduler.js';
import { RoundWriter } from '../../lib/verifier/round-writer.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { VerifierProcessRepository } from '../../lib/verifier/verifier-process-repository.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { pullAgentEnrolment } from './helpers/pull-agent-enrolment.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * A batch window long enough that "closed after it" and "closed well before it" cannot be confused, even
 * when a CI host stalls this process for ~3 s (with 4 s, such a stall came close to a third of it).
 */
const WINDOW_MS = 20_000;
const OWNER = 'close-flush-owner';

/**
 * A stopping pull loop does not wait for the verdicts' batch window (real PostgreSQL, a real round
 * against a fake HTTPS agent): the passes waiting for it are sent at once, and a round still in flight
 * when the loop closes is stored alone when it ends. Nothing is lost either way.
 */
describe('verifier pull loop: closing sends the verdicts waiting for their batch window (real PostgreSQL)', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let knex: Knex;
  let agent: FakePolledAgent;
  let requests = 0;
  const clientTls = createSelfSignedServerCertificate({ commonName: 'verifier-client', sans: ['127.0.0.1'] });

  before(async function () {
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    agent = await startFakePolledAgent();
    agent.server.on('request', () => (requests += 1));
  });

  after(async function () {
    agent?.server.close();
    await opened?.dispose();
  });

  /** A scheduler whose writer waits `WINDOW_MS`, polling `agentId` (enrolled here) from now. */
  async function polling(agentId: string): Promise<{ scheduler: PullScheduler; writer: RoundWriter }> {
    const repository = new VerifierAgentRepository(knex);
    const enrolment = pullAgentEnrolment({ agentId, port: agent.port, tpmPolicy: '{"mask": "0x400"}', akTpm: agent.fake.akTpm, mtlsCert: agent.certPem, supportedVersion: '2.6' });
    await repository.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), OWNER, 600);
    const writer = new RoundWriter(knex, { batchDelayMs: WINDOW_MS });
    const scheduler = new PullScheduler({
      repository,
      processes: new VerifierProcessRepository(knex),
      writer,
      health: new VerifierHealth(),
      agentDeps: {
        policies: new VerifierPolicyRepository(knex),
        cache: new PolicyCache(),
        clientTls: { cert: clientTls.certPem, key: clientTls.keyPem },
        requestTimeoutMs: 10_000,
        measuredBootEvaluate: 'once',
        bootLogs: new RepeatedTexts(),
      },
      round: { quoteInterval: 60, retryInterval: 60, maxRetries: 1, exponentialBackoff: false, severity: compileSeverityPolicy(), engine: {} },
      clock: { now: () => Date.now() / 1000 },
      verifierId: 'default',
      owner: OWNER,
      leaseSeconds: 600,
      maxConcurrentRounds: 4,
      log: pino({ level: 'silent' }),
    });
    await scheduler.adopt((await repository.find(agentId)) as VerifierAgentRecord);
    return { scheduler, writer };
  }

  async function outcomes(agentId: string): Promise<string[]> {
    const rows = (await knex('verifier_attestation_history').where({ agent_id: agentId }).select('outcome')) as { outcome: string }[];
    return rows.map((row) => row.outcome);
  }

  it('stores a pass waiting for its window when the loop closes, and returns well before the window', async function () {
    const { scheduler, writer } = await polling('close-flush-queued');
    const asked = requests;
    await eventually('the round asked the agent', () => Promise.resolve(requests > asked), 5_000, 10);
    await eventually('the round decided', () => Promise.resolve(scheduler.load.running === 0), 5_000, 10);
    expect(await outcomes('close-flush-queued'), 'the pass waits for its window').to.deep.equal([]);

    const closing = Date.now();
    await scheduler.close();
    expect(Date.now() - closing, 'closed well before the window').to.be.below(WINDOW_MS / 3);
    expect(await outcomes('close-flush-queued'), 'the pass stored').to.deep.equal(['pass']);
    await writer.close();
  });

  it('stores a round still in flight when the loop closes at once when it ends, not a window later', async function () {
    agent.replyDelayMs = 1_000;
    try {
      const { scheduler, writer } = await polling('close-flush-in-flight');
      const asked = requests;
      await eventually('the round asked the agent', () => Promise.resolve(requests > asked), 5_000, 10);

      const closing = Date.now();
      await scheduler.close();
      expect(Date.now() - closing, 'closed once the round ended, well before another window').to.be.below(1_000 + WINDOW_MS / 3);
      expect(await outcomes('close-flush-in-flight'), 'the round stored').to.deep.equal(['pass']);
      await writer.close();
    } finally {
      delete agent.replyDelayMs;
    }
  });
});
