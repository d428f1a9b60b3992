import { expect } from 'chai';
import { pino } from 'pino';
import { RoundRetrier } from '../../lib/verifier/round-retrier.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * `GET /health` is not ready while any verdict's write fails. Two writes of ONE agent may fail at once
 * (a push agent's verdict retried while another request's verdict or take-over of the same agent runs),
 * and the marks were kept per agent: the first write to settle cleared the other's, and the verifier
 * read ready while a verdict still waited to be stored. Each write now has its own mark.
 */
describe('verifier health: a failed write is marked per write, not per agent', function () {
  this.timeout(10_000);

  it('two failed writes of one agent: settling one leaves the verifier not ready until the other settles', function () {
    const health = new VerifierHealth();
    const first = { agentId: 'agent-a' };
    const second = { agentId: 'agent-a' };
    health.writeFailed(first, new Error('Connection terminated unexpectedly'));
    health.writeFailed(second, new Error('Connection terminated unexpectedly'));
    health.writeSettled(second);
    expect(health.problem()).to.equal('1 round(s) not stored: Connection terminated unexpectedly');
    expect(health.unstoredRounds).to.equal(1);
    health.writeSettled(first);
    expect(health.problem()).to.equal(undefined);
    expect(health.unstoredRounds).to.equal(0);
  });

  it('through the round retrier: one verdict of an agent stored while another still fails keeps the verifier not ready', async function () {
    const health = new VerifierHealth();
    const retrier = new RoundRetrier({
      rounds: { holdsRound: () => Promise.resolve(false) },
      backoff: { initialDelayMs: 10, maxDelayMs: 20 },
      health,
      log: pino({ level: 'silent' }),
    });
    let stillFailing = true;
    let failingSends = 0;
    const failing = retrier.store({
      agentId: 'agent-a',
      history: undefined,
      send: () => {
        failingSends += 1;
        return stillFailing ? Promise.reject(new Error('Connection terminated unexpectedly')) : Promise.resolve(true);
      },
      stored: (result) => result,
    });
    let secondSends = 0;
    const second = retrier.store({
      agentId: 'agent-a',
      history: undefined,
      send: () => {
        secondSends += 1;
        return secondSends === 1 ? Promise.reject(new Error('Connection terminated unexpectedly')) : Promise.resolve(true);
      },
      stored: (result) => result,
    });
    try {
      expect(await second).to.equal(true);
      // Checked as the second settles, before the first's next failure could mark the agent again:
      // before, the second's settle cleared the agent's one mark, and the verifier read ready.
      expect(failingSends, 'the first verdict still failing').to.be.greaterThan(0);
      expect(health.problem()).to.equal('1 round(s) not stored: Connection terminated unexpectedly');
      const sendsThen = failingSends;
      await eventually('the first verdict tried again', () => Promise.resolve(failingSends > sendsThen), 5_000, 5);
      expect(health.problem()).to.equal('1 round(s) not stored: Connection terminated unexpectedly');
    } finally {
      stillFailing = false;
    }
    expect(await failing).to.equal(true);
    expect(health.problem()).to.equal(undefined);
    retrier.close();
  });
});
