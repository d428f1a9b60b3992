import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'pull-adopt-twice-1';

/**
 * Two re-reads of one agent at once (a sweep and an operator's wake, or the version write's re-read
 * beside a wake) both load it before either is polling it. Only one may poll it: a second `PolledAgent`
 * would run its own rounds on its own connection beside the first, twice the rounds and two verdicts
 * racing for every interval.
 */
describe('verifier pull loop: an agent adopted twice at once is polled once (real PostgreSQL)', function () {
  this.timeout(30_000);
  let running: SingleAgentVerifier | undefined;

  after(async function () {
    await running?.close();
  });

  it('keeps the newer load and closes the older, so the agent sees one connection', async function () {
    running = await startSingleAgentVerifier(AGENT, 30);
    const { verifier, knex } = running;
    await eventually('a first round stored', async () => (await running!.row()).attestation_count >= 1);
    await running.put('stop');
    await eventually('the stopped agent no longer polled', async () => verifier.scheduler.size === 0);

    // Polled again as far as the row says, but no process told: the two adoptions below race.
    await knex('verifier_agents').update({ operational_state: OperationalState.GET_QUOTE }).where({ agent_id: AGENT });
    const record = await verifier.container.resolve(VerifierAgentRepository).find(AGENT);
    expect(record).to.not.equal(undefined);
    let connections = 0;
    running.agentServer.on('secureConnection', () => (connections += 1));

    await Promise.all([verifier.scheduler.adopt(record!), verifier.scheduler.adopt(record!)]);
    expect(verifier.scheduler.size).to.equal(1);
    const countBefore = (await running.row()).attestation_count;
    await eventually('three rounds of the adopted agent', async () => (await running!.row()).attestation_count >= countBefore + 3);
    expect(connections, 'TLS connections the verifier opened to the agent').to.equal(1);
  });
});
