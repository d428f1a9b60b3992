import { expect } from 'chai';
import { pollUntil } from '../../lib/timing/poll-until.js';
import type { PushVerdictWriter } from '../../lib/verifier/push/push-verdict-writer.js';
import { usePushVerifier, type Reply } from './helpers/push-verifier.js';

const WAIT = { timeoutMs: 10_000, intervalMs: 20 };

/**
 * What the silence sweep reads to skip an agent whose evidence this process is judging
 * (`PushAttestations.isJudging`). It was a set: a refused PATCH (old index, replay, 422) marked the
 * agent while it was refused, and of two PATCHes judged at once the first to finish cleared the mark
 * while the other was still being judged.
 */
describe('push model: which agents count as being judged', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  it('not an agent whose PATCH is being refused (an old index), even while its read waits', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await node.agent.attestOnce()).to.equal(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const { token, evidence } = await push.issuedEvidence(node);
    // Every read of the attestations waits on this lock: the refusal below is held in its read.
    const knex = push.opened.database.knex;
    const lock = await knex.transaction();
    let refused: Reply | undefined;
    try {
      await lock.raw('lock table verifier_push_attestations in access exclusive mode');
      const patched = push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/0`, evidence, token).then((reply) => (refused = reply));
      await pollUntil(WAIT, 'the PATCH waiting on the lock', async () => {
        const waiting = (await knex.raw("select count(*)::int as n from pg_locks where not granted and relation = 'verifier_push_attestations'::regclass")) as { rows: { n: number }[] };
        return (waiting.rows[0]?.n ?? 0) > 0;
      });
      expect(push.verifier.push.attestations.isJudging(node.uuid), 'judging while being refused').to.equal(false);
      await lock.commit();
      await patched;
    } finally {
      if (!lock.isCompleted()) await lock.rollback();
    }
    expect(refused?.status).to.equal(403);
    expect(refused?.body['errors'][0]['code']).to.equal('old_attestation');
  });

  it('still an agent of two PATCHes judged at once after the first is answered, until the second is', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const { token, evidence } = await push.issuedEvidence(node);
    // Each verdict's write waits until the test lets it go, in order.
    const writer: PushVerdictWriter = push.verifier.push.verdicts;
    const write = writer.write.bind(writer);
    const held: (() => void)[] = [];
    writer.write = async (...args) => {
      await new Promise<void>((resolve) => held.push(resolve));
      return write(...args);
    };
    try {
      const url = `/v3.0/agents/${node.uuid}/attestations/0`;
      // The first answers the attestation this process issued; the second reads it back and takes the evidence.
      const first = push.call('PATCH', url, evidence, token);
      await pollUntil(WAIT, 'the first verdict held', async () => held.length === 1);
      const second = push.call('PATCH', url, evidence, token);
      await pollUntil(WAIT, 'the second verdict held', async () => held.length === 2);
      held[0]?.();
      // The first verdict's take finds the evidence taken by the second: it is read back and refused.
      expect((await first).status).to.equal(403);
      expect(push.verifier.push.attestations.isJudging(node.uuid), 'judging while the second is').to.equal(true);
      held[1]?.();
      expect((await second).status).to.equal(202);
      expect(push.verifier.push.attestations.isJudging(node.uuid)).to.equal(false);
    } finally {
      writer.write = write;
      for (const release of held) release();
    }
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(1);
  });
});
