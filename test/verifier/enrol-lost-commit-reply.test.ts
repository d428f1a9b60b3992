import { expect } from 'chai';
import { CommitReplyDropper } from './helpers/commit-reply-dropper.js';
import { enrolFakeAgent, startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/** The default lease: what an agent claimed unseen would wait for. */
const LEASE = 30;

/**
 * An enrolment or a reactivation whose COMMIT landed but whose reply was lost (the connection cut
 * after the server committed) leaves the agent recorded as this process's, under a fresh lease, and
 * answered with an error: the process never started polling it, and nobody else may until the lease
 * lapses (30 s, a hundred intervals here). The next lease sweep must take it up.
 */
describe('verifier: an operator change stored with its COMMIT reply lost (real PostgreSQL)', function () {
  this.timeout(60_000);
  let proxy: CommitReplyDropper;
  let fixture: SingleAgentVerifier;
  let second: FakePolledAgent;

  before(async function () {
    proxy = new CommitReplyDropper();
    await proxy.start();
    fixture = await startSingleAgentVerifier('lost-enrol-0', LEASE, proxy.port);
    second = await startFakePolledAgent();
  });

  after(async function () {
    second?.server.close();
    await fixture?.close();
    await proxy?.close();
  });

  const attestations = async (agentId: string): Promise<number> =>
    Number(((await fixture.knex('verifier_agents').where({ agent_id: agentId }).first('attestation_count')) as { attestation_count: number } | undefined)?.attestation_count ?? 0);

  it('an enrolment: the agent is polled within a few intervals, not after its lease lapses', async function () {
    proxy.dropNextCommitReplyAfter('insert into "verifier_agents"');
    const failed = await enrolFakeAgent(fixture.verifier, 'lost-enrol-1', second).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(proxy.dropped, 'the enrolment\'s COMMIT reply swallowed').to.equal(1);
    expect(failed, 'the enrolment answered with an error').to.not.equal(undefined);
    expect(await fixture.knex('verifier_agents').where({ agent_id: 'lost-enrol-1' }).first('owner'), 'stored all the same').to.not.equal(undefined);
    await eventually('the agent attested', async () => (await attestations('lost-enrol-1')) >= 1, 5_000, 100);
  });

  it('a reactivation: the agent is polled again within a few intervals', async function () {
    await fixture.put('stop');
    // The round in flight at the stop ends, its write is refused and the row re-read: polled no more.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    proxy.dropNextCommitReplyAfter('"verifier_agents"');
    const reply = await fixture.verifier.service.app.inject({ method: 'PUT', url: '/v2.6/agents/lost-enrol-0/reactivate' });
    expect(proxy.dropped, 'the reactivation\'s COMMIT reply swallowed').to.equal(2);
    expect(reply.statusCode).to.not.equal(200);
    const before = await attestations('lost-enrol-0');
    await eventually('the agent attested again', async () => (await attestations('lost-enrol-0')) > before, 5_000, 100);
  });
});
