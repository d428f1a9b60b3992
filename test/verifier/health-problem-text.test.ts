import { expect } from 'chai';
import { pino, type Logger } from 'pino';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { VerifierService } from '../../lib/verifier/verifier-service.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/** The public `GET /health` carried the SQL text and the database's error messages in its `problem`. */
describe('verifier: /health says why it is not ready without the database\'s words', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  const WRITE_A = { agentId: 'agent-a' };
  const WRITE_B = { agentId: 'agent-b' };
  const SECRET_SQL = 'insert into "verifier_agents" ("boottime") values ($1) - null value in column "boottime" violates not-null constraint';

  const problem = async (): Promise<[number, unknown]> => {
    const reply = await push.verifier.service.app.inject({ method: 'GET', url: '/health' });
    return [reply.statusCode, (reply.json() as { results: { problem: unknown } }).results.problem];
  };

  it('a verdict waiting to be stored, or a failed lease sweep: 503 with a generic problem; ready again with none', async function () {
    const health = push.verifier.container.resolve(VerifierHealth);
    expect(await problem()).to.deep.equal([200, null]);
    health.writeFailed(WRITE_A, new Error(SECRET_SQL));
    expect(await problem()).to.deep.equal([503, 'verdicts wait to be stored: the database refuses or cannot be reached']);
    health.writeSettled(WRITE_A);
    health.sweepFailed(new Error(SECRET_SQL));
    expect(await problem()).to.deep.equal([503, 'the database refuses or cannot be reached']);
    health.sweepSucceeded();
    expect(await problem()).to.deep.equal([200, null]);
  });

  it('a liveness verdict waiting to be stored: 503 as a waiting verdict; ready again once it is stored', async function () {
    const health = push.verifier.container.resolve(VerifierHealth);
    expect(await problem()).to.deep.equal([200, null]);
    health.livenessWriteFailed('node-without-tpm', new Error(SECRET_SQL));
    try {
      expect(await problem()).to.deep.equal([503, 'verdicts wait to be stored: the database refuses or cannot be reached']);
    } finally {
      health.livenessWriteSettled('node-without-tpm');
    }
    expect(await problem()).to.deep.equal([200, null]);
  });

  it('an agent whose policies cannot be read: 503 saying how many agents are not polled; ready again once it is loaded', async function () {
    const health = push.verifier.container.resolve(VerifierHealth);
    expect(await problem()).to.deep.equal([200, null]);
    health.loadFailed('agent-b', new Error(SECRET_SQL));
    health.loadFailed('agent-c', new Error(SECRET_SQL));
    expect(await problem()).to.deep.equal([503, '2 agent(s) not polled: their row or policies cannot be read from the database']);
    health.loadSettled('agent-b');
    health.loadSettled('agent-c');
    expect(await problem()).to.deep.equal([200, null]);
  });

  // Every unauthenticated GET /health logged a warning with the database's text while not ready.
  it('logs the database\'s text when the problem changes or a minute after it was last logged, not on every request', async function () {
    const health = push.verifier.container.resolve(VerifierHealth);
    const service = push.verifier.container.resolve(VerifierService) as unknown as { log: Logger; readiness(now?: number): Promise<unknown> };
    const lines: { level: number; msg: string; problem?: string }[] = [];
    const silent = service.log;
    service.log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string; problem?: string }) });
    try {
      health.writeFailed(WRITE_A, new Error(SECRET_SQL));
      for (let i = 0; i < 5; i += 1) expect((await problem())[0]).to.equal(503);
      health.writeFailed(WRITE_B, new Error(SECRET_SQL));
      for (let i = 0; i < 5; i += 1) expect((await problem())[0]).to.equal(503);
      await service.readiness(Date.now() + 61_000);
      await service.readiness(Date.now() + 62_000);
      health.writeSettled(WRITE_A);
      health.writeSettled(WRITE_B);
      expect(await problem()).to.deep.equal([200, null]);
      health.writeFailed(WRITE_A, new Error(SECRET_SQL));
      expect((await problem())[0]).to.equal(503);
      health.writeSettled(WRITE_A);
      expect(await problem()).to.deep.equal([200, null]);
      expect(lines.map((line) => [line.msg, line.problem ?? null])).to.deep.equal([
        ['verifier not ready', `1 round(s) not stored: ${SECRET_SQL}`],
        ['verifier not ready', `2 round(s) not stored: ${SECRET_SQL}`],
        ['verifier not ready', `2 round(s) not stored: ${SECRET_SQL}`],
        ['verifier ready', null],
        ['verifier not ready', `1 round(s) not stored: ${SECRET_SQL}`],
        ['verifier ready', null],
      ]);
    } finally {
      service.log = silent;
      health.writeSettled(WRITE_A);
      health.writeSettled(WRITE_B);
    }
  });
});
