import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { PushPolicyCache } from '../../lib/verifier/push/push-policy-cache.js';
import { PushRepository } from '../../lib/verifier/push/push-repository.js';
import type { PushVerdictWriter, PushWriteOutcome } from '../../lib/verifier/push/push-verdict-writer.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { PUSH_SETTINGS, requested, usePushVerifier, type PushNode, type Reply } from './helpers/push-verifier.js';

/**
 * A silence timeout far beyond the attestations below: with PUSH_SETTINGS' 3 s, a slow host spent it
 * between the agent's first round and the next one's evidence (a 1 s wait, a session, phase 1, a quote),
 * and the sweep failed the agent as not_reachable before the verdict under test was judged.
 */
const SETTINGS = { ...PUSH_SETTINGS, pushTimeout: 60 };

describe('push model: taken evidence whose verdict is not stored fails the agent (fail closed)', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: SETTINGS.pushTimeout });

  interface Issued {
    readonly token: string;
    readonly attestations: string;
    readonly created: Reply;
  }

  /**
   * Enrols `node`, lets it attest once, opens its session and sends phase 1 of its next attestation
   * (after `beforePhase1`, if given): the attestation issued, awaiting its evidence.
   */
  async function issueAttestation(node: PushNode, beforePhase1?: () => Promise<void>): Promise<Issued> {
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await beforePhase1?.();
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status).to.equal(201);
    return { token, attestations, created };
  }

  /** Phase 2 of `issued` on `/latest`, with the verifier's verdict writer replaced by `replaced(write)` for the request. */
  async function sendEvidence(node: PushNode, issued: Issued, replaced: (write: PushVerdictWriter['write']) => PushVerdictWriter['write']): Promise<Reply> {
    const writer: PushVerdictWriter = push.verifier.push.verdicts;
    const write = writer.write.bind(writer);
    writer.write = replaced(write);
    try {
      return await push.call('PATCH', `${issued.attestations}/latest`, await node.agent.evidence(requested(issued.created)), issued.token);
    } finally {
      writer.write = write;
    }
  }

  /** Phase 2 of `issued` on `/latest`, with the push agents' policies read by `replaced(read)` for the request. */
  async function sendEvidenceWithPolicies(node: PushNode, issued: Issued, replaced: (read: PushPolicyCache['read']) => PushPolicyCache['read']): Promise<Reply> {
    const read = PushPolicyCache.prototype.read;
    PushPolicyCache.prototype.read = replaced(read);
    try {
      return await sendEvidence(node, issued, (write) => write);
    } finally {
      PushPolicyCache.prototype.read = read;
    }
  }

  /**
   * Sends one attestation of an attesting agent with the verifier's verdict writer replaced, for
   * passing verdicts only, by `passing` (given the verdict's history row; the evidence is taken first,
   * as the real write would); failing verdicts are written as ever. Resolves to the PATCH's reply.
   */
  async function attestWith(node: PushNode, passing: (history: HistoryRow | undefined) => Promise<PushWriteOutcome>): Promise<Reply> {
    const repository = new PushRepository(push.opened.database.knex);
    return sendEvidence(node, await issueAttestation(node), (write) => async (round, completion, take) => {
      if (round.history?.outcome !== 'pass') return write(round, completion, take);
      if (take !== undefined) await repository.takeJudgedEvidence([take]);
      return passing(round.history);
    });
  }

  /** The agent FAILED by the verifier's own exception event, announced, and its attestation completed as a failure. */
  async function expectFailedClosed(node: PushNode): Promise<void> {
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.FAILED);
    expect(stored.state.lastEventId).to.equal('internal.verifier.exception');
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'fail']);
    expect(await push.announcement(node.uuid)).to.deep.equal({ type: 'comm_error', event_id: 'internal.verifier.exception' });
    const judged = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as Record<string, unknown>;
    expect(judged).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    expect(push.verifier.push.attestations.isJudging(node.uuid)).to.equal(false);
  }

  it('a pass refused again and again (another process takes the row over each time) is stored 4 times, judged once, then the agent fails: 202, the attestation complete as fail', async function () {
    const node = await push.bootNode();
    const refused: (HistoryRow | undefined)[] = [];
    const reply = await attestWith(node, async (history) => {
      refused.push(history);
      await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' });
      return { stored: false, reason: 'agent_changed' };
    });
    // The attestation ends complete (its FAIL stored): 202, as for any evidence judged, not 503 verification_in_progress.
    expect(reply.status).to.equal(202);
    expect(refused, 'stored at most 4 times').to.have.length(4);
    expect(new Set(refused).size, 'the row changed only its owner: the same verdict, not judged again').to.equal(1);
    await expectFailedClosed(node);
  });

  it('a pass refused with nothing changed on the row is not stored again: the agent fails at once, 202', async function () {
    const node = await push.bootNode();
    let refusals = 0;
    const reply = await attestWith(node, () => {
      refusals += 1;
      return Promise.resolve({ stored: false, reason: 'agent_changed' });
    });
    expect(reply.status).to.equal(202);
    expect(refusals).to.equal(1);
    await expectFailedClosed(node);
  });

  it('a verdict judged again whose write throws (the writer closed after the first write took the evidence): the agent fails, 202', async function () {
    const node = await push.bootNode();
    let writes = 0;
    const reply = await attestWith(node, async () => {
      writes += 1;
      if (writes > 1) throw new Error('the round writer is closed: the round was not stored');
      await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' });
      return { stored: false, reason: 'agent_changed' };
    });
    expect(reply.status).to.equal(202);
    expect(writes).to.equal(2);
    await expectFailedClosed(node);
  });

  it('taken evidence whose FAIL cannot be stored either (every later write throws) answers 500, its attestation left evaluating_evidence; the agent is not trusted after its silence timeout', async function () {
    const node = await push.bootNode();
    const repository = new PushRepository(push.opened.database.knex);
    let writes = 0;
    const reply = await sendEvidence(node, await issueAttestation(node), () => async (_round, _completion, take) => {
      writes += 1;
      if (writes > 1) throw new Error('the round writer is closed: the round was not stored');
      if (take !== undefined) await repository.takeJudgedEvidence([take]);
      await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' });
      return { stored: false, reason: 'agent_changed' };
    });
    expect(reply.status).to.equal(500);
    expect(writes, 'the verdict, judged again, then the FAIL').to.equal(3);
    const pending = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as Record<string, unknown>;
    expect(pending).to.include({ stage: 'evaluating_evidence' });
    expect(push.verifier.push.attestations.isJudging(node.uuid), 'this process no longer judges the agent').to.equal(false);
    // Silence is judged from the database: a process with PUSH_SETTINGS' 3 s timeout, started only now
    // so that it cannot fail the agent before the evidence, times it out.
    const sweeper = await startVerifier({ dataDir: push.dir, ...PUSH_SETTINGS, instanceId: 'silence-sweeper' }, { database: push.opened.database, inProcessForTests: true });
    try {
      await pollUntil({ timeoutMs: 20_000, intervalMs: 100 }, 'the silent agent failed', async () => (await push.stored(node.uuid)).state.operationalState === OperationalState.FAILED);
    } finally {
      await sweeper.close();
    }
    expect((await push.stored(node.uuid)).state).to.include({ operationalState: OperationalState.FAILED, lastEventId: 'internal.verifier.not_reachable' });
  });

  it('a verdict judged again whose re-read throws (the database away a moment after the refusal took the evidence): the agent fails, 202', async function () {
    const node = await push.bootNode();
    const agentWithLatest = PushRepository.prototype.agentWithLatest;
    let reReads = 0;
    let reply: Reply;
    try {
      reply = await attestWith(node, () => {
        // The next read of the agent's row (judging the taken evidence again) throws once.
        PushRepository.prototype.agentWithLatest = function () {
          PushRepository.prototype.agentWithLatest = agentWithLatest;
          reReads += 1;
          return Promise.reject(new Error('Connection terminated unexpectedly'));
        };
        return Promise.resolve({ stored: false, reason: 'agent_changed' });
      });
    } finally {
      PushRepository.prototype.agentWithLatest = agentWithLatest;
    }
    expect(reReads).to.equal(1);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    await expectFailedClosed(node);
  });

  for (const [refusal, status, whileWriting] of [
    ['stopped', 404, (uuid: string) => push.opened.database.knex('verifier_agents').where({ agent_id: uuid }).update({ operational_state: OperationalState.TERMINATED })],
    ['enrolled again (a newer attestation)', 403, async (uuid: string) => {
      const table = () => push.opened.database.knex('verifier_push_attestations');
      const issued = (await table().where({ agent_id: uuid, index: 1 }).first()) as Record<string, unknown>;
      await table().insert({ ...issued, index: 2, stage: 'awaiting_evidence', evidence_received_at: null });
    }],
  ] as const) {
    it(`taken evidence whose verdict is lost while the agent is ${refusal} is refused as docs/push.md says: ${status}, not 500`, async function () {
      const node = await push.bootNode();
      let writes = 0;
      const reply = await attestWith(node, async () => {
        writes += 1;
        if (writes === 1) {
          await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' });
          return { stored: false, reason: 'agent_changed' };
        }
        await whileWriting(node.uuid);
        throw new Error('the round writer is closed: the round was not stored');
      });
      expect(writes, 'the verdict, then judged again').to.equal(2);
      expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
    });
  }

  it('a database error reading the policies to judge evidence not taken, on every retry, stores nothing: 500, the attestation still awaits it, the agent as it was; sent again, it is judged', async function () {
    const node = await push.bootNode();
    const issued = await issueAttestation(node);
    const before = (await push.stored(node.uuid)).state;
    let reads = 0;
    const reply = await sendEvidenceWithPolicies(node, issued, (read) =>
      function (this: PushPolicyCache, record) {
        reads += 1;
        if (reads > 4) return read.call(this, record);
        return Promise.reject(Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' }));
      },
    );
    expect(reply.status, JSON.stringify(reply.body)).to.equal(500);
    expect(reads, 'read, then tried 3 times more').to.equal(4);
    const attestation = () => push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first() as Promise<Record<string, unknown>>;
    expect(await attestation()).to.include({ stage: 'awaiting_evidence' });
    expect((await push.stored(node.uuid)).state).to.deep.equal(before);
    const again = await sendEvidence(node, issued, (write) => write);
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(await attestation()).to.include({ stage: 'verification_complete', evaluation: 'pass' });
  });

  it('evidence the engine cannot judge (it throws before the evidence is taken) fails the agent as Keylime\'s internal.verifier.exception: 202, attestation completed as fail', async function () {
    const node = await push.bootNode();
    const issued = await issueAttestation(node);
    // A tpm_policy that no longer parses: the engine (`decidePushEvidence`) throws on phase 2's evidence.
    const reply = await sendEvidenceWithPolicies(node, issued, (read) => async function (this: PushPolicyCache, record) {
      const compile = await read.call(this, record);
      return () => ({ ...compile(), tpmPolicy: '{"0": not json' });
    });
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    await expectFailedClosed(node);
  });

  it('a pass whose take finds a newer attestation (another process\'s phase 1 came between) is not stored for it: the evidence read back is judged against its own challenge', async function () {
    const node = await push.bootNode();
    const table = () => push.opened.database.knex('verifier_push_attestations');
    let newer = false;
    const reply = await sendEvidence(node, await issueAttestation(node), (write) => async (round, completion, take) => {
      if (!newer && round.history?.outcome === 'pass' && take !== undefined) {
        // Another process's phase 1 inserts attestation 2 (same choice, a challenge of its own); the row's version does not change.
        newer = true;
        const issued = (await table().where({ agent_id: node.uuid, index: 1 }).first()) as Record<string, unknown>;
        const challenge = randomBytes(Buffer.from(String(issued['challenge']), 'base64').length).toString('base64');
        await table().insert({ ...issued, index: 2, challenge });
      }
      return write(round, completion, take);
    });
    expect(newer, 'a passing verdict with its take pending was written').to.equal(true);
    expect(reply.status).to.equal(202);
    const second = (await table().where({ agent_id: node.uuid, index: 2 }).first()) as Record<string, unknown>;
    expect(second).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    expect((await push.stored(node.uuid)).state.operationalState).to.not.equal(OperationalState.GET_QUOTE);
  });

  it('a take-over refused with the take still pending (the row, owned by another process, changed between the phases) reads the evidence back and judges it: 202, attestation completed', async function () {
    const node = await push.bootNode();
    const agents = () => push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid });
    // A changed version as well as another owner, so that phase 1 reads the row rather than reuse its last verdict's.
    const issued = await issueAttestation(node, async () => {
      await agents().update({ owner: 'another-process' }).increment('attestation_count', 1);
    });
    await agents().increment('attestation_count', 1);
    const reply = await sendEvidence(node, issued, (write) => write);
    expect(reply.status).to.equal(202);
    const judged = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first()) as Record<string, unknown>;
    expect(judged).to.include({ stage: 'verification_complete', evaluation: 'pass' });
  });
});
