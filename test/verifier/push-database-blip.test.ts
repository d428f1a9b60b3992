import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { Database } from '../../lib/db/database-factory.js';
import { PushPolicyCache } from '../../lib/verifier/push/push-policy-cache.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { collectingLogger } from '../helpers/collecting-logger.js';
import { openSchemaThroughPort } from '../helpers/databases.js';
import { StatementCutProxy } from '../helpers/statement-cut-proxy.js';
import { contentOf, requested, usePushVerifier, PUSH_SETTINGS, type PushNode, type Reply } from './helpers/push-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/**
 * The database goes away while a verifier reads an agent's stored policies to judge evidence it has
 * already taken (read back: another instance issued the attestation). A second verifier instance
 * reaches the shared PostgreSQL through a TCP proxy the test cuts; the first issues phase 1. A healthy
 * agent must not be FAILED by the blip: a short one is waited out (the read is tried again), a longer
 * one gives the evidence back (500, nothing stored) so that the agent's next PATCH is judged. Evidence
 * once judged failing is never given back.
 */
describe('push model: a database blip while reading the stored policies to judge evidence (TCP proxy, real PostgreSQL)', function () {
  this.timeout(60_000);
  // A long silence timeout: only the blip may fail the agent.
  const push = usePushVerifier({ pushTimeout: 600 });
  let proxy: StatementCutProxy;
  let database: Database;
  let second: RunningVerifier;
  /** The second instance's log lines, parsed. */
  const lines: Record<string, unknown>[] = [];

  before(async function () {
    proxy = new StatementCutProxy();
    await proxy.start();
    database = await openSchemaThroughPort(push.opened.database.knex, proxy.port, push.dir);
    second = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout: 600, instanceId: 'behind-the-proxy' },
      { database, inProcessForTests: true, logger: collectingLogger('info', lines) },
    );
  });

  after(async function () {
    await second?.close().catch(() => undefined);
    await proxy?.close();
    await database?.close();
  });

  /**
   * Enrols `node` and lets it attest once, then has the first instance issue its next attestation and
   * sends the evidence to the second, whose reads of the stored policies go through `read` (given the
   * real one). Resolves to the PATCH's reply and the evidence's path.
   */
  async function sendThroughBlip(node: PushNode, read: (real: PushPolicyCache['read']) => PushPolicyCache['read']): Promise<{ reply: Reply; patch: () => Promise<Reply> }> {
    // No refstate: the first instance would leave the uefi_log out, and the second refuse that evidence unjudged (push-boot-log.test.ts).
    await push.enrol(node, { mb_policy: undefined });
    expect(await node.agent.attestOnce()).to.equal(1);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status).to.equal(201);
    const evidence = await node.agent.evidence(requested(created));
    const patch = (): Promise<Reply> => push.call('PATCH', `${attestations}/latest`, evidence, token, second);
    const real = PushPolicyCache.prototype.read;
    PushPolicyCache.prototype.read = read(real);
    try {
      return { reply: await patch(), patch };
    } finally {
      PushPolicyCache.prototype.read = real;
    }
  }

  /**
   * Policy reads that cut the database before each runs, so the read and its three retries all fail;
   * `afterLastRetry` runs once the fourth has failed.
   */
  function cutAtEveryRead(afterLastRetry: () => void): { read: (real: PushPolicyCache['read']) => PushPolicyCache['read']; reads: () => number } {
    let reads = 0;
    const read = (real: PushPolicyCache['read']): PushPolicyCache['read'] =>
      async function (this: PushPolicyCache, record) {
        reads += 1;
        proxy.cut();
        try {
          return await real.call(this, record);
        } finally {
          if (reads === 4) afterLastRetry();
        }
      };
    return { read, reads: () => reads };
  }

  const attestation = (node: PushNode) =>
    push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 1 }).first() as Promise<Record<string, unknown>>;

  /** The evidence given back after the four reads a blip cut: 500, nothing stored, the agent not FAILED; sent again, judged. */
  async function expectGivenBackThenJudged(node: PushNode, reply: Reply, reads: number, patch: () => Promise<Reply>): Promise<void> {
    expect(reply.status, JSON.stringify(reply.body)).to.equal(500);
    expect(reads).to.equal(4);
    expect(await attestation(node)).to.include({ stage: 'awaiting_evidence', evidence_received_at: null });
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
    const again = await patch();
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
  }

  it('a blip of about 1 s is waited out: the evidence is judged, its PASS stored, 202', async function () {
    const node = await push.bootNode();
    let reads = 0;
    const { reply } = await sendThroughBlip(node, (real) => function (this: PushPolicyCache, record) {
      reads += 1;
      if (reads === 1) {
        proxy.cut();
        setTimeout(() => proxy.restore(), 1200);
      }
      return real.call(this, record);
    });
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    expect(reads, 'read again after the blip').to.be.greaterThan(1);
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    expect((await push.stored(node.uuid)).state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('a blip outlasting every retry gives the evidence back: 500 logged once, nothing stored, the agent not FAILED; sent again, it is judged', async function () {
    const node = await push.bootNode();
    lines.length = 0;
    // The database comes back just after the last retry failed: in time for the evidence to be given back.
    const blip = cutAtEveryRead(() => proxy.restore());
    const { reply, patch } = await sendThroughBlip(node, blip.read);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(500);
    expect(blip.reads(), 'read, then tried 3 times more').to.equal(4);
    expect(await attestation(node)).to.include({ stage: 'awaiting_evidence', evidence_received_at: null });
    const stored = await push.stored(node.uuid);
    expect(stored.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass']);
    const about = lines.filter((line) => Number(line['level']) >= 40 && JSON.stringify(line).includes(node.uuid));
    expect(about.map((line) => line['msg']), 'one log line for the 500').to.deep.equal(['push request failed']);
    const again = await patch();
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'pass' });
    expect((await push.history(node.uuid)).map((r) => r.outcome)).to.deep.equal(['pass', 'pass']);
  });

  it('a blip outlasting every retry and the give-back itself: the give-back waits for the database, 500, nothing stored, the agent not FAILED; sent again, it is judged', async function () {
    const node = await push.bootNode();
    // Still away when the evidence is given back, back a moment later.
    const blip = cutAtEveryRead(() => setTimeout(() => proxy.restore(), 1500));
    const { reply, patch } = await sendThroughBlip(node, blip.read);
    // Before, the give-back's error failed the agent closed: internal.verifier.exception stored, 202.
    await expectGivenBackThenJudged(node, reply, blip.reads(), patch);
  });

  it('a give-back whose answer is lost (it landed, its reply cut): tried again, it answers given back, 500, nothing stored, the agent not FAILED; sent again, it is judged', async function () {
    const node = await push.bootNode();
    const cutsBefore = proxy.cuts;
    // The give-back's own statement (its where names the challenge; the take's does not).
    const blip = cutAtEveryRead(() => {
      proxy.restore();
      proxy.cutAt('"evidence_received_at" = $2 where "agent_id" = $3 and "index" = $4 and "challenge" = $5', true);
    });
    const { reply, patch } = await Promise.all([
      sendThroughBlip(node, blip.read),
      (async () => {
        await eventually('the give-back run, its reply cut', async () => proxy.cuts > cutsBefore + 4, 30_000, 10);
        setTimeout(() => proxy.restore(), 500);
      })(),
    ]).then(([sent]) => sent);
    // Before, its retry found the attestation given back already, took that for "not given back" and
    // failed closed: the re-read for that FAIL refused the PATCH 403 old_attestation, of an attestation
    // still the agent's latest and awaiting its evidence.
    await expectGivenBackThenJudged(node, reply, blip.reads(), patch);
  });

  it('evidence judged failing is never given back: when its stored policies cannot be read to judge it again, the agent is FAILED (stored, 202)', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await node.ima.measure([{ path: '/usr/bin/nc', content: contentOf('/usr/bin/nc') }]);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token);
    expect(created.status).to.equal(201);
    const writer = push.verifier.push.verdicts;
    const write = writer.write.bind(writer);
    const read = PushPolicyCache.prototype.read;
    let writes = 0;
    // The failing verdict (its evidence taken at once) is refused once: the row changed, so it is judged again, with the database away.
    writer.write = async (round, completion, take) => {
      writes += 1;
      if (writes > 1) return write(round, completion, take);
      await push.opened.database.knex('verifier_agents').where({ agent_id: node.uuid }).update({ owner: 'another-process' }).increment('attestation_count', 1);
      PushPolicyCache.prototype.read = () => Promise.reject(new Error('Connection terminated unexpectedly'));
      return { stored: false, reason: 'agent_changed' };
    };
    let reply: Reply;
    try {
      reply = await push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(created)), token);
    } finally {
      writer.write = write;
      PushPolicyCache.prototype.read = read;
    }
    expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
    expect(writes, 'the failing verdict, then the FAIL of the verifier\'s exception').to.equal(2);
    expect(await attestation(node)).to.include({ stage: 'verification_complete', evaluation: 'fail' });
    expect((await push.stored(node.uuid)).state).to.include({ operationalState: OperationalState.FAILED, lastEventId: 'internal.verifier.exception' });
  });

  it('evidence not taken (phase 1 at the same instance) whose stored policies cannot be read: 500 logged once, the attestation still awaits it', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    const token = await node.agent.openSession();
    const attestations = `/v3.0/agents/${node.uuid}/attestations`;
    await new Promise((resolve) => setTimeout(resolve, 1050));
    const created = await push.call('POST', attestations, await node.agent.capabilities(), token, second);
    expect(created.status).to.equal(201);
    lines.length = 0;
    const read = PushPolicyCache.prototype.read;
    PushPolicyCache.prototype.read = () => Promise.reject(new Error('Connection terminated unexpectedly'));
    let reply: Reply;
    try {
      reply = await push.call('PATCH', `${attestations}/latest`, await node.agent.evidence(requested(created)), token, second);
    } finally {
      PushPolicyCache.prototype.read = read;
    }
    expect(reply.status, JSON.stringify(reply.body)).to.equal(500);
    expect(await attestation(node)).to.include({ stage: 'awaiting_evidence' });
    const about = lines.filter((line) => Number(line['level']) >= 40 && JSON.stringify(line).includes(node.uuid));
    expect(about.map((line) => line['msg']), 'one log line for the 500').to.deep.equal(['push request failed']);
  });
});
