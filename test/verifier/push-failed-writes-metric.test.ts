import { expect } from 'chai';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/**
 * A push verdict whose write fails is counted in `ironlime_verifier_failed_writes_total`, as a pull
 * round's is: the push verdicts' transaction cannot lock its audit heads (their table renamed away),
 * the verdict is tried again until the table is back, and each failed attempt shows in /metrics.
 */
describe('push model: failed verdict writes in ironlime_verifier_failed_writes_total', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: 60 });

  async function metric(name: string): Promise<number> {
    const metrics = await push.verifier.service.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).to.equal(200);
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics.body)?.[1] ?? Number.NaN);
  }

  const failedWrites = (): Promise<number> => metric('ironlime_verifier_failed_writes_total');

  it('counts each failed attempt of a push verdict, which is stored once the database takes it', async function () {
    const knex = push.opened.database.knex;
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    expect(await failedWrites()).to.equal(0);
    await knex.raw('alter table audit_heads rename to audit_heads_away');
    let attesting: Promise<number> | undefined;
    try {
      attesting = node.agent.attestOnce();
      await pollUntil({ timeoutMs: 20_000, intervalMs: 50 }, 'a failed push verdict write counted', async () => (await failedWrites()) > 0);
    } finally {
      await knex.raw('alter table audit_heads_away rename to audit_heads');
    }
    expect(await attesting).to.equal(1);
    expect((await push.history(node.uuid)).map((row) => row.outcome)).to.deep.equal(['pass']);
    expect(await metric('ironlime_verifier_unstored_rounds')).to.equal(0);
  });
});
