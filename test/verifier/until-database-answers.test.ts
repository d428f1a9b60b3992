import { expect } from 'chai';
import { pino } from 'pino';
import { isTransientDatabaseError } from '../../lib/db/database-errors.js';
import { untilDatabaseAnswers } from '../../lib/verifier/push/until-database-answers.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { collectingLogger } from '../helpers/collecting-logger.js';

/** An error as node-postgres hands a statement's refusal over: the server's SQLSTATE in `code`. */
function refusal(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * What a push verdict waits for (its agent's row read again, taken over, its evidence given back) is
 * tried again while the database is away, and only then: an error the database answered with (a
 * constraint, a row that cannot be read, a bug) fails the same way however often it runs, and was
 * tried for ever — the PATCH held and `GET /health` not ready until shutdown.
 */
describe('push verdicts: untilDatabaseAnswers retries what is transient only', function () {
  this.timeout(10_000);

  /** Runs `run` under a fresh wait: its result or error, and the health, log lines and waits given up on after it. */
  async function waited(run: () => Promise<string>): Promise<{ outcome: unknown; health: VerifierHealth; lines: Record<string, unknown>[]; givenUp: number }> {
    const health = new VerifierHealth();
    const lines: Record<string, unknown>[] = [];
    let givenUp = 0;
    const outcome = await untilDatabaseAnswers(run, {
      agentId: 'agent-a',
      closed: new AbortController().signal,
      health,
      metrics: { verdictWaitGivenUp: () => (givenUp += 1) },
      log: collectingLogger('info', lines),
      what: 'reading the test row',
    }).catch((error: unknown) => error);
    return { outcome, health, lines, givenUp };
  }

  it('a permanent error (a constraint, a bad row) is thrown at once, logged, counted, and leaves the verifier ready', async function () {
    const violation = refusal('23505', 'duplicate key value violates unique constraint');
    let runs = 0;
    const { outcome, health, lines, givenUp } = await waited(() => {
      runs += 1;
      // Before, it was run again until it answered (here the third run; in life, never).
      return runs < 3 ? Promise.reject(violation) : Promise.resolve('answered');
    });
    expect(outcome).to.equal(violation);
    expect(runs).to.equal(1);
    expect(givenUp, 'counted in /metrics').to.equal(1);
    expect(health.problem()).to.equal(undefined);
    expect(lines.map((line) => line['msg'])).to.deep.equal(['reading the test row failed, and not for want of the database: not tried again']);
  });

  it('a connection lost, a server shutting down or a serialization failure is waited out: tried again until answered', async function () {
    const errors = [new Error('Connection terminated unexpectedly'), refusal('57P01', 'terminating connection due to administrator command'), refusal('40001', 'could not serialize access')];
    const notReady: (string | undefined)[] = [];
    const health = new VerifierHealth();
    let runs = 0;
    const outcome = await untilDatabaseAnswers(
      () => {
        notReady.push(health.problem());
        const error = errors[runs];
        runs += 1;
        return error === undefined ? Promise.resolve('answered') : Promise.reject(error);
      },
      { agentId: 'agent-a', closed: new AbortController().signal, health, log: pino({ level: 'silent' }), what: 'reading the test row' },
    );
    expect(outcome).to.equal('answered');
    expect(runs).to.equal(4);
    expect(notReady.slice(1).every((problem) => problem !== undefined), 'not ready while it waits').to.equal(true);
    expect(health.problem(), 'ready once answered').to.equal(undefined);
  });

  it('tells transient errors from the rest', function () {
    const transient = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Client has encountered a connection error and is not queryable'),
      refusal('08006', 'connection failure'),
      refusal('57P03', 'the database system is starting up'),
      refusal('40P01', 'deadlock detected'),
      refusal('55P03', 'could not obtain lock'),
      refusal('57014', 'canceling statement due to statement timeout'),
      refusal('53300', 'too many connections'),
      refusal('26000', 'prepared statement does not exist'),
      Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' }),
      new Error('timeout expired'),
    ];
    const permanent = [
      refusal('23505', 'duplicate key'),
      refusal('22P02', 'invalid input syntax'),
      refusal('42703', 'column does not exist'),
      refusal('XX000', 'internal error'),
      new TypeError("Cannot read properties of undefined (reading 'agent_id')"),
      'not an error',
    ];
    expect(transient.filter((error) => !isTransientDatabaseError(error))).to.deep.equal([]);
    expect(permanent.filter((error) => isTransientDatabaseError(error))).to.deep.equal([]);
  });
});
