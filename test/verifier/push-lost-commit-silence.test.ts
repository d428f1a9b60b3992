import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { CommitDroppingInstance } from './helpers/commit-dropping-instance.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/** Text only the round writer's statement sends: the silence FAIL's transaction (this instance serves no evidence). */
const ROUND_MARKER = 'expected_version text';

/**
 * The silence sweep's FAIL loses its COMMIT reply (a proxy passes the COMMIT to PostgreSQL, which
 * commits, and cuts the connection before the verifier hears back). Written again, the FAIL finds the
 * row it was decided from gone — moved by itself — and the next sweep sees the agent FAILED already:
 * unless the retry asks the history for the FAIL's round id, that failure is never announced.
 */
describe('push model: a silence FAIL whose COMMIT reply is lost is stored once and announced once (real PostgreSQL)', function () {
  this.timeout(60_000);
  // Only the instance behind the proxy times agents out (3 s): the other's timeout is long.
  const push = usePushVerifier({ pushTimeout: 600 });
  let dropping: CommitDroppingInstance;

  before(async function () {
    dropping = await CommitDroppingInstance.start(push, 'commit-dropping-silence', 3);
  });

  after(async function () {
    await dropping?.close();
  });

  it('the FAIL counts as stored: one fail row, one audit verdict, announced as comm_error', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    dropping.proxy.dropNextCommitReplyAfter(ROUND_MARKER);
    await pollUntil({ timeoutMs: 15_000, intervalMs: 50 }, 'the silence FAIL\'s COMMIT reply swallowed', () => Promise.resolve(dropping.proxy.dropped === 1));
    await pollUntil({ timeoutMs: 5_000, intervalMs: 50 }, 'the agent FAILED', async () => (await push.stored(node.uuid)).state.operationalState === OperationalState.FAILED);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.not_reachable' });
    // Later sweeps find the agent FAILED: nothing more is stored or announced.
    await sleep(1_000);
    expect(push.announced.filter((message) => message['agent_id'] === node.uuid)).to.have.length(1);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    const verdicts = (await push.opened.database.knex('audit_records').where({ action: 'verdict', stream: node.uuid }).orderBy('seq').select('details')) as { details: string }[];
    expect(verdicts.map((verdict) => (JSON.parse(verdict.details) as { outcome: string }).outcome)).to.deep.equal(['pass', 'fail']);
  });
});
