import { expect } from 'chai';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { PushRefused } from '../../lib/verifier/push/push-reply.js';
import { usePushVerifier, type PushNode } from './helpers/push-verifier.js';
import { heldHash } from './helpers/held-hash.js';

/** The deadline of the hashes that hold the gate's threads: ahead of any agent. */
const URGENT = 0;

/**
 * An enrolled node proves one session after another (its TPM still answers): each proof's hash waited
 * by the node's silence deadline, so the node took the place of any agent further from its own, for
 * every session it proved. Now one of its hashes waits by its deadline; the next waits at the back.
 */
describe('push model: a node proving sessions back to back gets one hash by its deadline at a time (real PostgreSQL, swtpm)', function () {
  this.timeout(60_000);
  const push = usePushVerifier();
  let node: PushNode;

  before(async function () {
    node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
  });

  it('its second proof, while its first waits, is refused 503 rather than taking the place of an agent further from its deadline', async function () {
    const first = await push.provableSession(node);
    const second = await push.provableSession(node);
    const gate = push.verifier.push.slowHashes;
    // The threads held, and every place taken by hashes of agents an hour from their deadlines.
    const held = Array.from({ length: gate.concurrency }, () => heldHash());
    const runs: Promise<unknown>[] = held.map((hash) => gate.run(() => hash.promise, URGENT));
    const later = Date.now() / 1000 + 3600;
    const fill = heldHash();
    const refusedLater: PushRefused[] = [];
    for (let agent = 0; ; agent += 1) {
      try {
        gate.admit(later, undefined, `later-${agent}`);
      } catch {
        break;
      }
      runs.push(gate.run(() => fill.promise, later, undefined, `later-${agent}`).catch((e: unknown) => refusedLater.push(e as PushRefused)));
    }
    const full = gate.waiting;
    try {
      const proving = push.call('PATCH', `/v3.0/sessions/${first.id}`, first.body);
      await pollUntil({ timeoutMs: 10_000, intervalMs: 20 }, 'the first proof took a place', async () => refusedLater.length === 1);
      // Past the proof's signature check (a swtpm-made certify): before, it took another place; now it is refused.
      let answered: number | undefined;
      const again = push.call('PATCH', `/v3.0/sessions/${second.id}`, second.body).then((reply) => {
        answered = reply.status;
        return reply;
      });
      await pollUntil({ timeoutMs: 5_000, intervalMs: 20 }, 'the second proof answered or queued', async () => answered !== undefined || refusedLater.length > 1).catch(() => undefined);
      for (const hash of [...held, fill]) hash.finish();
      const [one, two] = await Promise.all([proving, again]);
      expect({ first: one.status, second: two.status, error: (two.body['errors'] as { code?: string }[] | undefined)?.[0]?.code, laterRefused: refusedLater.length, full }).to.deep.equal({
        first: 200,
        second: 503,
        error: 'verifier_busy',
        laterRefused: 1,
        full,
      });
      expect(two.headers['retry-after']).to.match(/^[1-9][0-9]*$/);
    } finally {
      for (const hash of [...held, fill]) hash.finish();
      await Promise.all(runs);
    }
  });
});
