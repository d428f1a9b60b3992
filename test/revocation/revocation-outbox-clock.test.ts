import { expect } from 'chai';
import { pino } from 'pino';
import { RevocationOutbox, type OutboxDelivery } from '../../lib/revocation/revocation-outbox.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';

const HOUR_MS = 3_600_000;

/**
 * The outbox dates a notice's next try on the database's clock, which its claims compare with: a
 * process whose clock runs an hour behind the database's (`Date.now` shifted for the test) set a
 * retry due an hour ago, so the back-off and the five-minute wait of an unknown receiver did not hold.
 */
describe('revocation outbox: the next try is dated on the database clock', function () {
  this.timeout(60_000);
  const realNow = Date.now;
  let opened: OpenedDatabase;
  let outbox: RevocationOutbox | undefined;

  beforeEach(async function () {
    opened = await openMigratedTestSchema();
  });

  afterEach(async function () {
    Date.now = realNow;
    await outbox?.close();
    outbox = undefined;
    await opened?.dispose();
  });

  async function waitsAtLeast(seconds: number): Promise<boolean> {
    const row = (await opened.database.knex('verifier_revocation_outbox')
      .where('next_attempt_at', '>', opened.database.knex.raw('now() + make_interval(secs => ?)', [seconds]))
      .count({ n: '*' })
      .first()) as { n: string | number };
    return Number(row.n) === 1;
  }

  async function run(deliver: () => Promise<OutboxDelivery>, delivered: () => Promise<boolean>): Promise<void> {
    outbox = new RevocationOutbox({
      knex: opened.database.knex,
      deliver,
      backoff: { initialDelayMs: 60_000, maxDelayMs: 120_000 },
      pollMs: 600_000,
      leaseSeconds: 1,
      log: pino({ level: 'silent' }),
    });
    await outbox.recordNow([{ receiver: 'webhook http://127.0.0.1:9/revoked', agentId: 'clock-agent', envelope: '{}' }]);
    Date.now = () => realNow() - HOUR_MS;
    outbox.start();
    await eventually('the delivery to end', delivered);
    Date.now = realNow;
  }

  it('a failed delivery is retried after its back-off, not at once', async function () {
    let tries = 0;
    await run(
      () => {
        tries += 1;
        return Promise.reject(new Error('receiver down'));
      },
      async () => {
        const row = (await opened.database.knex('verifier_revocation_outbox').select('attempts').first()) as { attempts: number };
        return row.attempts === 1;
      },
    );
    expect(tries).to.equal(1);
    expect(await waitsAtLeast(50)).to.equal(true);
  });

  it('a notice for a receiver this process does not have waits the longest back-off', async function () {
    let asked = false;
    await run(
      () => {
        asked = true;
        return Promise.resolve('unknown_receiver');
      },
      async () => asked && (await waitsAtLeast(100)),
    );
  });
});
