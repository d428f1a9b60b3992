import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { startSingleAgentVerifier, type SingleAgentVerifier } from './helpers/single-agent-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

const AGENT = 'stored-weak-ak-1';

/**
 * An enrolment stored before weak AKs were refused at enrolment (or written by another tool) holds a
 * 1024-bit RSA AK: anyone who factors it signs quotes as the TPM. Loaded again (a restart, a take-over,
 * a reactivation), the agent must be failed, not polled and judged by that key.
 */
describe('verifier pull loop: an enrolment stored with a weak AK is failed when loaded (real PostgreSQL)', function () {
  this.timeout(60_000);
  let fixture: SingleAgentVerifier;

  beforeEach(async function () {
    fixture = await startSingleAgentVerifier(AGENT, 1);
    await eventually('an attestation', async () => (await fixture.row()).attestation_count >= 1);
  });

  afterEach(async function () {
    await fixture?.close();
  });

  it('stores a FAIL (internal.verifier.exception) naming the AK instead of polling the agent', async function () {
    await fixture.put('stop');
    await fixture.knex('verifier_agents').where({ agent_id: AGENT }).update({ ak_tpm: new FakeAgent({ akRsaBits: 1024 }).akTpm });
    await fixture.put('reactivate');
    await eventually('the FAIL stored', async () => (await fixture.row()).operational_state === OperationalState.FAILED);
    const fails = (await fixture.knex('verifier_attestation_history').where({ agent_id: AGENT, outcome: 'fail' })) as { failures: { event_id: string }[] }[];
    expect(fails.map((fail) => fail.failures.map((failure) => failure.event_id))).to.deep.equal([['internal.verifier.exception']]);
    expect(JSON.stringify(fails)).to.match(/the AK is a 1024-bit RSA key/);
  });
});
