import { expect } from 'chai';
import { DatabaseClock } from '../../lib/db/database-clock.js';
import { forEachDatabase } from '../helpers/databases.js';
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
    const clock = new DatabaseClock({ raw: () => Promise.reject(new Error('connection refused')) } as never);
    expect((await rejectionOf(clock.start(), Error)).message).to.contain('connection refused');
  });
});
