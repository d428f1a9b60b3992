import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import { VerifierPolicyRepository } from '../../lib/verifier/verifier-policy-repository.js';
import { createDeployment, digestOf, eventually, policyForAgent, refstateForAgent, type Deployment } from './helpers/verifier-fixture.js';

describe('verifier pull loop (software TPM agents, in-process services)', function () {
  this.timeout(60_000);
  let deployment: Deployment;
  let tenant: TenantClient;

  before(async function () {
    deployment = await createDeployment();
    await deployment.startVerifier();
    tenant = deployment.tenant();
  });

  after(async function () {
    await deployment?.dispose();
  });

  /** A fresh agent (each test its own, so that any test runs alone), enrolled and attested once. */
  async function attestedAgent(name: string): Promise<RunningAgent> {
    const agent = await deployment.startAgent(name);
    await tenant.addAgent(agent.uuid, { runtimePolicy: policyForAgent(agent) });
    await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 10_000 });
    return agent;
  }

  /** `agent` after a file outside its policy ran: Invalid Quote. */
  async function tampered(agent: RunningAgent): Promise<void> {
    await agent.appendIma('/usr/bin/evil', digestOf('evil'));
    await tenant.waitForState(agent.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 10_000 });
  }

  it('enrols an agent, reaches Get Quote, asks only for new IMA entries, and delivers V', async function () {
    const agent = await deployment.startAgent('agent-1');
    const good = digestOf('good tool');
    const added = await tenant.addAgent(agent.uuid, {
      runtimePolicy: policyForAgent(agent, { '/usr/bin/good': good }),
      mbPolicy: refstateForAgent(agent),
      deliverKeys: true,
      payload: Buffer.from('secret payload'),
    });
    expect(added.identity.valid).to.equal(true);
    const status = await tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 10_000 });
    expect(status.operational_state_label).to.equal('Get Quote');
    await eventually('two attestations', async () => ((await tenant.getStatus(agent.uuid)).attestation_count ?? 0) >= 2);
    expect(await tenant.verifyBootstrapKey(agent.uuid, added.bootstrapKey as Buffer, { timeoutMs: 10_000 })).to.equal(true);
    expect(agent.bootstrapSecret()?.payload?.toString()).to.equal('secret payload');

    const before = (await tenant.history(agent.uuid, 1))[0];
    expect(before?.outcome).to.equal('pass');
    const entry = before?.imaMlEntry ?? 0;
    expect(entry).to.be.greaterThan(0);
    await agent.appendIma('/usr/bin/good', good);
    await eventually('the new entry to be attested', async () => {
      const [latest] = await tenant.history(agent.uuid, 1);
      return (latest?.imaMlEntry ?? 0) > entry;
    });
    const rounds = await tenant.history(agent.uuid, 50);
    expect(rounds.every((r) => r.outcome === 'pass')).to.equal(true);
    // Incremental: after the first full round every round asks from where the last one ended.
    const later = rounds.filter((r) => r.imaMlEntry !== null && r.imaMlEntry > 0);
    expect(later.length).to.be.greaterThan(0);
    expect(Math.max(...later.map((r) => r.imaEntriesReceived ?? 99))).to.be.at.most(1);
    const statusNow = await tenant.getStatus(agent.uuid);
    expect(statusNow).to.include({ attestation_status: 'PASS', has_runtime_policy: 1, has_mb_refstate: 1, hash_alg: 'sha256', sign_alg: 'rsassa' });
  });

  it('an IMA entry outside the policy is Invalid Quote with ima.validation.ima-ng.not_in_allowlist', async function () {
    const agent = await attestedAgent('agent-evil');
    await tampered(agent);
    const status = await tenant.getStatus(agent.uuid);
    expect(status.last_event_id).to.equal('ima.validation.ima-ng.not_in_allowlist');
    expect(status.attestation_status).to.equal('FAIL');
    const [latest] = await tenant.history(agent.uuid, 1);
    expect(latest?.outcome).to.equal('fail');
    expect(latest?.failures.map((f) => f.event_id)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(JSON.stringify(latest?.failures[0]?.context)).to.include('/usr/bin/evil');
  });

  it('reactivate polls again (and fails again while the entry is in the log); stop stops', async function () {
    const agent = await attestedAgent('agent-reactivated');
    await tampered(agent);
    const [failedRound] = await tenant.history(agent.uuid, 1);
    await tenant.reactivateAgent(agent.uuid);
    await eventually('a new failing round', async () => ((await tenant.history(agent.uuid, 1))[0]?.id ?? 0) > (failedRound?.id ?? 0));
    await tenant.waitForState(agent.uuid, [OperationalState.INVALID_QUOTE]);
    await tenant.stopAgent(agent.uuid);
    expect((await tenant.getStatus(agent.uuid)).operational_state).to.equal(OperationalState.TENANT_FAILED);
  });

  it('an agent whose named runtime policy row is not found is Failed with internal.verifier.exception when it would be polled, not left unpolled', async function () {
    const agent = await attestedAgent('agent-policy-gone');
    await tenant.stopAgent(agent.uuid);
    const [stoppedRound] = await tenant.history(agent.uuid, 1);
    // The foreign key keeps the row while an agent names it: a read that finds none is a lasting fault.
    const findRuntime = VerifierPolicyRepository.prototype.findRuntime;
    VerifierPolicyRepository.prototype.findRuntime = () => Promise.resolve(undefined);
    try {
      await tenant.reactivateAgent(agent.uuid);
      const status = await tenant.waitForState(agent.uuid, [OperationalState.FAILED], { timeoutMs: 10_000 });
      expect(status.last_event_id).to.equal('internal.verifier.exception');
    } finally {
      VerifierPolicyRepository.prototype.findRuntime = findRuntime;
    }
    const [latest] = await tenant.history(agent.uuid, 1);
    expect(latest?.id).to.be.greaterThan(stoppedRound?.id ?? 0);
    expect(latest?.outcome).to.equal('fail');
    expect(JSON.stringify(latest?.failures[0]?.context)).to.include('which is not stored');
  });

  it('an unreachable agent is retried, then Failed with internal.verifier.not_reachable; delete of a failed agent is immediate', async function () {
    const other = await deployment.startAgent('agent-2');
    await tenant.addAgent(other.uuid, { runtimePolicy: policyForAgent(other) });
    await tenant.waitForState(other.uuid, [OperationalState.GET_QUOTE]);
    await other.close();
    const status = await tenant.waitForState(other.uuid, [OperationalState.FAILED], { timeoutMs: 15_000 });
    expect(status.last_event_id).to.equal('internal.verifier.not_reachable');
    const rounds = await tenant.history(other.uuid, 10);
    expect(rounds.filter((r) => r.outcome === 'retry').length).to.equal(2);
    await tenant.deleteAgent(other.uuid, { timeoutMs: 5000 });
    const error = await tenant.getStatus(other.uuid).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KeylimeHttpError);
    expect((error as KeylimeHttpError).remoteHttpStatus).to.equal(404);
    // The history outlives the agent.
    expect((await tenant.history(other.uuid, 100)).length).to.equal(rounds.length);
  });

  it('delete of a polled agent answers 202 (TERMINATED) and the loop deletes it', async function () {
    const third = await deployment.startAgent('agent-3');
    await tenant.addAgent(third.uuid, {});
    await tenant.waitForState(third.uuid, [OperationalState.GET_QUOTE]);
    expect(await tenant.verifier.delete(third.uuid)).to.equal('terminating');
    await eventually('404', async () => {
      try {
        await tenant.getStatus(third.uuid);
        return false;
      } catch (error) {
        return error instanceof KeylimeHttpError && error.remoteHttpStatus === 404;
      }
    });
  });
});
