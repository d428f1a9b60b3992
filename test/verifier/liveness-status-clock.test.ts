import { expect } from 'chai';
import { judgeLivenessStatus } from '../../lib/attestation/liveness-operator-decision.js';
import { LivenessRepository, type LivenessRecord } from '../../lib/verifier/liveness/liveness-repository.js';
import { livenessStatusResults } from '../../lib/verifier/liveness/liveness-routes.js';
import { storeLivenessState } from '../helpers/liveness-state.js';
import { livenessBody, useTokenVerifier } from './helpers/token-verifier.js';

/**
 * The monitor dates a node's last answer on the database's clock. Its status must be judged on that
 * clock too: judged on the verifier process's clock, a process running behind the database showed a
 * node silent for longer than the freshness bound as `alive` (the keylime driver, reading the process's
 * clock in the reply's Date header, passed it), and one a few seconds ahead or behind called every
 * answer stale or from the future.
 */
describe('liveness status: judged on the clock the last answer was dated with', function () {
  this.timeout(60_000);
  const behindSeconds = 60;
  const realNow = Date.now;
  const v = useTokenVerifier();
  let repository: LivenessRepository;

  before(async function () {
    repository = new LivenessRepository(v.knex);
  });

  after(async function () {
    Date.now = realNow;
  });

  const databaseNow = async (): Promise<number> => {
    const result = (await v.knex.raw('select extract(epoch from now())::float8 as now')) as { rows: { now: number }[] };
    return Math.floor(Number(result.rows[0]?.now));
  };

  /** The status read by a verifier process whose clock is `behindSeconds` behind the database's, and the driver's verdict on it in that process. */
  const statusBehind = async (agentId: string): Promise<{ results: Record<string, unknown>; verdict: string }> => {
    Date.now = () => realNow() - behindSeconds * 1000;
    try {
      const reply = await v.call('GET', `/v2.3/liveness/${agentId}`, await v.token('viewer', 'default'));
      expect(reply.status, reply.body).to.equal(200);
      const results = (JSON.parse(reply.body) as { results: Record<string, unknown> }).results;
      const verdict = judgeLivenessStatus(
        {
          status: results['liveness_status'] as 'alive',
          lastSeen: results['last_seen'] as number,
          lastFailure: null,
          integrityEvidence: '',
          freshnessBoundSeconds: results['freshness_bound'] as number,
          stale: results['stale'] as boolean,
        },
        { now: Date.now() / 1000, verifierNow: Date.now() / 1000 },
      );
      return { results, verdict: verdict.kind };
    } finally {
      Date.now = realNow;
    }
  };

  it('a node silent for longer than the bound is stale, and one that just answered is alive, on a process clock behind the database', async function () {
    const operator = await v.token('operator', 'default');
    for (const agentId of ['silent-node', 'answering-node']) {
      expect((await v.call('POST', `/v2.3/liveness/${agentId}`, operator, livenessBody(v.verifier.caCert))).status).to.equal(200);
    }
    const bound = (await statusBehind('silent-node')).results['freshness_bound'] as number;
    const now = await databaseNow();
    await storeLivenessState(repository, 'silent-node', { status: 'alive', misses: 0, lastSeen: now - bound - 60, lastFailure: null });
    await storeLivenessState(repository, 'answering-node', { status: 'alive', misses: 0, lastSeen: now, lastFailure: null });

    const silent = await statusBehind('silent-node');
    expect(silent.results, 'a silent node shown alive').to.include({ liveness_status: 'pending', stale: true });
    expect(silent.verdict).to.equal('pending');
    const answering = await statusBehind('answering-node');
    expect(answering.results, 'an answer just stored shown stale').to.include({ liveness_status: 'alive', stale: false });
    expect(answering.verdict).to.equal('pass');
  });

  it('last_seen is moved onto the answering process clock rounded down: shown a fraction of a second older, never younger', function () {
    const record = { agentId: 'n', state: { status: 'alive', misses: 0, lastSeen: 1000, lastFailure: null } } as unknown as LivenessRecord;
    // This process 0.6 s ahead of the database: the answer is 1000.6 on its clock, shown 1000 (rounding made it 1001).
    const results = livenessStatusResults(record, { databaseNow: 1010, processNow: 1010.6 }, 60);
    expect(results['last_seen']).to.equal(1000);
  });
});
