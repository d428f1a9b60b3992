import { expect } from 'chai';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/** The public `GET /health` carried the SQL text and the database's error messages in its `problem`. */
describe('verifier: /health says why it is not ready without the database\'s words', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  const SECRET_SQL = 'insert into "verifier_agents" ("boottime") values ($1) - null value in column "boottime" violates not-null constraint';

  const problem = async (): Promise<[number, unknown]> => {
    const reply = await push.verifier.service.app.inject({ method: 'GET', url: '/health' });
    return [reply.statusCode, (reply.json() as { results: { problem: unknown } }).results.problem];
  };

  it('a verdict waiting to be stored, or a failed lease sweep: 503 with a generic problem; ready again with none', async function () {
    const health = push.verifier.container.resolve(VerifierHealth);
    expect(await problem()).to.deep.equal([200, null]);
    health.writeFailed('agent-a', new Error(SECRET_SQL));
    expect(await problem()).to.deep.equal([503, 'verdicts wait to be stored: the database refuses or cannot be reached']);
    health.writeSettled('agent-a');
    health.sweepFailed(new Error(SECRET_SQL));
    expect(await problem()).to.deep.equal([503, 'the database refuses or cannot be reached']);
    health.sweepSucceeded();
    expect(await problem()).to.deep.equal([200, null]);
  });
});
