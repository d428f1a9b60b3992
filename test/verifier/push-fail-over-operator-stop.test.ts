import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { PushPolicyCache } from '../../lib/verifier/push/push-policy-cache.js';
import { eventually } from './helpers/verifier-fixture.js';
import { contentOf, requested, usePushVerifier, type PushNode, type Reply } from './helpers/push-verifier.js';

/**
 * An operator stops a push agent (TENANT_FAILED) while the verifier judges its failing evidence or
 * while that FAIL waits for a write retry. The FAIL is the evidence of a detected tampering: its
 * history row, its audit record and its revocation announcement are kept, once, the attestation
 * completes as a failure, and the agent keeps the operator's state.
 */
describe('push model: a FAIL meeting an operator stop is recorded and announced (real PostgreSQL)', function () {
  this.timeout(60_000);
  // A long silence timeout: only the evidence may fail the agent.
  const push = usePushVerifier({ pushTimeout: 600 });
  const knex = () => push.opened.database.knex;

  /**
   * Enrols `node`, lets it attest once, has it measure a file its policy does not allow, and sends that
   * evidence (phase 1 first, then `beforePatch`) with `during` running while it is judged or stored.
   */
  async function failingEvidence(node: PushNode, beforePatch: () => void, during: (patch: Promise<Reply>) => Promise<void>): Promise<Reply> {
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await node.ima.measure([{ path: '/usr/bin/nc', content: contentOf('/usr/bin/nc') }]);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await sleep(1050);
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const evidence = await node.agent.evidence(requested(created));
    beforePatch();
    const patch = push.call('PATCH', `${attestations}/latest`, evidence, token);
    await during(patch);
    return patch;
  }

  async function stop(node: PushNode): Promise<void> {
    const reply = await push.call('PUT', `/v2.5/agents/${node.uuid}/stop`);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
  }

  async function auditedOutcomes(uuid: string): Promise<string[]> {
    const verdicts = (await knex()('audit_records').where({ action: 'verdict', stream: uuid }).orderBy('seq').select('details')) as { details: string }[];
    return verdicts.map((verdict) => (JSON.parse(verdict.details) as { outcome: string }).outcome);
  }

  /** What the FAIL must have left: its attestation complete, its history row and audit record, one announcement; the operator's state kept. */
  async function expectRecordedAndAnnounced(node: PushNode, reply: Reply): Promise<void> {
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    expect(await knex()('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(await auditedOutcomes(node.uuid)).to.deep.equal(['pass', 'fail']);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'revocation', event_id: 'ima.validation.ima-ng.not_in_allowlist' });
    expect((await push.stored(node.uuid)).state.operationalState, 'the operator state kept').to.equal(OperationalState.TENANT_FAILED);
  }

  it('a stop landing while the evidence is judged (before its take)', async function () {
    const node = await push.bootNode();
    const real = PushPolicyCache.prototype.read;
    let stopped = false;
    const stopWhileJudged = (): void => {
      PushPolicyCache.prototype.read = async function (this: PushPolicyCache, record) {
        const compiled = await real.call(this, record);
        if (record.agentId === node.uuid && !stopped) {
          stopped = true;
          await stop(node);
        }
        return compiled;
      };
    };
    try {
      const reply = await failingEvidence(node, stopWhileJudged, async () => undefined);
      expect(stopped, 'stopped while judged').to.equal(true);
      await expectRecordedAndAnnounced(node, reply);
    } finally {
      PushPolicyCache.prototype.read = real;
    }
  });

  it('failing evidence from an agent already stopped is refused as before: nothing recorded, nothing announced', async function () {
    const node = await push.bootNode();
    const reply = await failingEvidence(node, () => undefined, async () => undefined).catch((error: unknown) => error);
    expect(reply).to.not.be.instanceOf(Error);
    expect((reply as Reply).status, 'before the stop: recorded').to.equal(202);
    // The agent is stopped; it goes on pushing, and its next evidence fails again.
    await stop(node);
    await node.ima.measure([{ path: '/usr/bin/socat', content: contentOf('/usr/bin/socat') }]);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await sleep(1050);
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const again = await push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(created)), token);
    expect(again.status, JSON.stringify(again.body)).to.equal(404);
    await sleep(500);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(await auditedOutcomes(node.uuid)).to.deep.equal(['pass', 'fail']);
    expect(push.announced.filter((message) => message['agent_id'] === node.uuid), 'announced once, for the FAIL before the stop').to.have.length(1);
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.TENANT_FAILED);
  });

  it('a stop landing while the FAIL waits for a write retry', async function () {
    const node = await push.bootNode();
    await knex().raw(`create function refuse_fail_history() returns trigger language plpgsql as $$
      begin raise exception 'fail history rows refused by the test'; end $$`);
    await knex().raw(`create trigger refuse_fail_history before insert on verifier_attestation_history for each row when (new.outcome = 'fail') execute function refuse_fail_history()`);
    try {
      const reply = await failingEvidence(node, () => undefined, async () => {
        await eventually('the FAIL waiting (verifier not ready)', async () => (await push.call('GET', '/health')).status === 503, 10_000);
        await stop(node);
        await knex().raw('drop trigger refuse_fail_history on verifier_attestation_history');
      });
      await expectRecordedAndAnnounced(node, reply);
    } finally {
      await knex().raw('drop trigger if exists refuse_fail_history on verifier_attestation_history');
      await knex().raw('drop function if exists refuse_fail_history()');
    }
  });
});
