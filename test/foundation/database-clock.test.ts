import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { DatabaseClock } from '../../lib/db/database-clock.js';
import { boundedPgSettings, DEFAULT_POSTGRES_BOUNDS } from '../../lib/db/postgres-bounds.js';
import { BlackHoleProxy } from './helpers/black-hole-proxy.js';
import { forEachDatabase, TEST_DATABASE_URL } from '../helpers/databases.js';
import { rejectionOf } from '../helpers/rejection.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';

/** The database's clock as a process whose own clock is off reads it (lib/db/database-clock.ts). */
forEachDatabase("database clock: the database's time read through a process clock that is off", function (fixture) {

  async function databaseSeconds(): Promise<number> {
    const result = (await fixture.database.knex.raw('select extract(epoch from clock_timestamp())::float8 as now')) as { rows: { now: number }[] };
    return Number(result.rows[0]?.now);
  }

  for (const skewSeconds of [3600, -3600]) {
    it(`reads the database's time, not its own, with its clock ${skewSeconds > 0 ? 'an hour ahead' : 'an hour behind'}, and shows a stored time on its own clock`, async function () {
      const clock = new DatabaseClock(fixture.database.knex, () => Date.now() + skewSeconds * 1000);
      await clock.measure();
      const before = await databaseSeconds();
      const now = clock.now();
      const after = await databaseSeconds();
      // Within the two readings, give or take the measurement's half round trip (a loaded host: a second).
      expect(now).to.be.within(before - 1, after + 1);
      const readings = clock.readings();
      expect(readings.processNow - readings.databaseNow).to.be.closeTo(skewSeconds, 1);
    });
  }

  it("keeps the database's time when this process's clock steps an hour ahead or back between measurements (NTP, an operator's date)", async function () {
    let stepMs = 0;
    const clock = new DatabaseClock(fixture.database.knex, () => Date.now() + stepMs);
    await clock.measure();
    for (const step of [3600_000, -3600_000]) {
      stepMs = step;
      const before = await databaseSeconds();
      const now = clock.now();
      const after = await databaseSeconds();
      expect(now).to.be.within(before - 1, after + 1);
      // A reply is still dated on this process's clock, stepped or not.
      expect(clock.readings().processNow).to.be.closeTo((Date.now() + step) / 1000, 1);
    }
  });

  it('is measured again at once when its monotonic clock stood still while this process clock went on (a suspended host)', async function () {
    let frozenMs = 0;
    const clock = new DatabaseClock(fixture.database.knex, undefined, () => performance.now() - frozenMs);
    await clock.start();
    try {
      frozenMs = 3600_000;
      // The first reading after the suspend is an hour behind; it has the clock measured again, well before the 10 s schedule.
      expect(clock.now()).to.be.below((await databaseSeconds()) - 3000);
      await eventually('the clock measured again', async () => Math.abs(clock.now() - (await databaseSeconds())) < 1, 5000, 20);
    } finally {
      clock.close();
    }
  });

  it('refuses to tell the time before its first measurement: nothing is stamped on an unknown clock', async function () {
    const clock = new DatabaseClock(fixture.database.knex);
    expect(() => clock.now()).to.throw(/before it was measured/);
    expect(() => clock.readings()).to.throw(/before it was measured/);
    await clock.start();
    clock.close();
    expect(clock.now()).to.be.closeTo(Date.now() / 1000, 5);
  });

  it('a start on a database that does not answer throws (a verifier does not start without the clock)', async function () {
    const clock = new DatabaseClock({ transaction: () => Promise.reject(new Error('connection refused')) } as never);
    expect((await rejectionOf(clock.start(), Error)).message).to.contain('connection refused');
  });
});

describe('database clock: precision and the direction of its error', function () {
  it("measures within a round trip, not within the wait for a connection of a saturated pool", async function () {
    this.timeout(60_000);
    // One connection, kept busy by three loops of 200 ms statements: a statement waits behind the others.
    const knex = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    let busy = true;
    const loop = async (): Promise<void> => {
      while (busy) await knex.raw('select pg_sleep(0.2)');
    };
    const loops = [loop(), loop(), loop()];
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const clock = new DatabaseClock(knex);
      await clock.measure();
      // Each reading waited for up to three statements when taken from the pool one by one (≥ 200 ms).
      expect(clock.uncertainty).to.be.below(100);
    } finally {
      busy = false;
      await Promise.all(loops);
      await knex.destroy();
    }
  });

  it('a measurement cut off by a silent database fails on the statement bound, keeps the last offset and holds no connection', async function () {
    this.timeout(60_000);
    const proxy = new BlackHoleProxy();
    await proxy.start();
    const knex = knexFactory(boundedPgSettings(`postgres://postgres@127.0.0.1:${proxy.port}/test`, { ...DEFAULT_POSTGRES_BOUNDS, statementMs: 500, connectMs: 1000, acquireMs: 2000 }));
    try {
      const clock = new DatabaseClock(knex);
      await clock.measure();
      const before = clock.latestNowMs();
      // Silent from the next statement on: the transaction's BEGIN or one of its readings gets no reply.
      const measuring = clock.measure();
      proxy.blackHole();
      expect((await rejectionOf(measuring, Error)).message).to.match(/no reply|timeout/);
      expect(clock.latestNowMs()).to.be.at.least(before);
      expect(knex.client.pool.numUsed()).to.equal(0);
      proxy.resume();
      await eventually('a measurement once the database answers again', () => clock.measure().then(() => true, () => false), 30_000);
      expect(knex.client.pool.numUsed()).to.equal(0);
    } finally {
      await knex.destroy();
      await proxy.close();
    }
  });

  it('stamps on the earliest and judges on the latest the database time may be', async function () {
    // Each monotonic reading is 100 ms after the one before; the database reads 1,000,000 ms each time.
    let monotonicMs = 0;
    const connection = { raw: () => Promise.resolve({ rows: [{ now: 1_000_000 }] }) };
    const knex = { ...connection, transaction: (work: (trx: unknown) => Promise<unknown>) => work(connection) } as unknown as Knex;
    const clock = new DatabaseClock(knex, () => 5_000, () => (monotonicMs += 100));
    await clock.measure();
    // Read between monotonic 100 and 200 (then 400-500, 700-800: the same round trip): offset 1,000,000 - 150 ± 50.
    expect(clock.uncertainty).to.equal(50);
    monotonicMs = 1000;
    expect(clock.nowMs()).to.equal(1_000_000 - 150 + 1100 - 50);
    monotonicMs = 1000;
    expect(clock.latestNowMs()).to.equal(1_000_000 - 150 + 1100 + 50);
    monotonicMs = 1000;
    expect(clock.readings().databaseNow).to.equal((1_000_000 - 150 + 1100 + 50) / 1000);
  });
});
