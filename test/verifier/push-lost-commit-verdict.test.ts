import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { CommitDroppingInstance } from './helpers/commit-dropping-instance.js';
import { contentOf, requested, usePushVerifier, type PushNode, type Reply } from './helpers/push-verifier.js';

/** Text only the statement completing judged attestations sends: its transaction is the verdict's. */
const VERDICT_MARKER = 'verification_completed_at';

/**
 * A push verdict whose COMMIT reply is lost (a proxy passes the COMMIT to PostgreSQL, which commits,
 * and cuts the connection before the verifier hears back). The verifier writes the verdict again, and
 * that write is refused by the verdict's own earlier one (the row moved, the evidence taken). Asked
 * for the verdict's round id, the history says it is stored: the agent gets its 202, a failure is
 * announced once, and nothing is stored twice.
 */
describe('push model: a verdict whose COMMIT reply is lost is stored once, answered 202 and announced (real PostgreSQL)', function () {
  this.timeout(60_000);
  // A long silence timeout: only the evidence may fail the agent.
  const push = usePushVerifier({ pushTimeout: 600 });
  let dropping: CommitDroppingInstance;

  before(async function () {
    dropping = await CommitDroppingInstance.start(push, 'commit-dropping-evidence', 600);
  });

  after(async function () {
    await dropping?.close();
  });

  /** Enrols `node`, lets it attest once, and sends its next evidence (phase 1 too) to the instance that loses the verdict's COMMIT reply. */
  async function attestLosingTheCommitReply(node: PushNode, beforeEvidence: () => Promise<unknown> = async () => undefined): Promise<Reply> {
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await beforeEvidence();
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await sleep(1050);
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token, dropping.verifier);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const evidence = await node.agent.evidence(requested(created));
    const dropped = dropping.proxy.dropped;
    dropping.proxy.dropNextCommitReplyAfter(VERDICT_MARKER);
    const reply = await push.call('PATCH', `${attestations}/latest`, evidence, token, dropping.verifier);
    expect(dropping.proxy.dropped, 'the verdict\'s COMMIT reply swallowed').to.equal(dropped + 1);
    return reply;
  }

  async function auditedOutcomes(uuid: string): Promise<string[]> {
    const verdicts = (await push.opened.database.knex('audit_records').where({ action: 'verdict', stream: uuid }).orderBy('seq').select('details')) as { details: string }[];
    return verdicts.map((verdict) => (JSON.parse(verdict.details) as { outcome: string }).outcome);
  }

  const attestation = (node: PushNode) =>
    push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first() as Promise<Record<string, unknown>>;

  it('a failing verdict: 202, the attestation complete, the FAIL stored once and announced once', async function () {
    const node = await push.bootNode();
    const reply = await attestLosingTheCommitReply(node, () => node.ima.measure([{ path: '/usr/bin/nc', content: contentOf('/usr/bin/nc') }]));
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    // As the reply to any stored verdict (Keylime's 202 does not wait for the evaluation).
    expect(reply.body['data']['attributes']['stage']).to.equal('evaluating_evidence');
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'fail', failure_reason: 'policy_violation' });
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'revocation', event_id: 'ima.validation.ima-ng.not_in_allowlist' });
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
    expect(await auditedOutcomes(node.uuid)).to.deep.equal(['pass', 'fail']);
  });

  it('a passing verdict (its evidence taken in the same transaction): 202, the PASS stored once, nothing announced', async function () {
    const node = await push.bootNode();
    const reply = await attestLosingTheCommitReply(node);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    expect(reply.body['data']['attributes']['stage']).to.equal('evaluating_evidence');
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(stored.state.attestationCount).to.equal(2);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass', 'pass']);
    expect(await auditedOutcomes(node.uuid)).to.deep.equal(['pass', 'pass']);
    expect(push.announced.filter((message) => message['agent_id'] === node.uuid)).to.deep.equal([]);
  });
});
