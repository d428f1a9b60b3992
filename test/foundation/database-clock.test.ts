import { expect } from 'chai';
import { DatabaseClock } from '../../lib/db/database-clock.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { rejectionOf } from '../helpers/rejection.js';

/** The database's clock as a process whose own clock is off reads it (lib/db/database-clock.ts). */
describe("database clock: the database's time read through a process clock that is off", function () {
  let opened: OpenedDatabase;

  before(async function () {
    opened = await openTestSchema();
  });

  after(async function () {
    await opened?.dispose();
  });

  async function databaseSeconds(): Promise<number> {
    const result = (await opened.database.knex.raw('select extract(epoch from clock_timestamp())::float8 as now')) as { rows: { now: number }[] };
    return Number(result.rows[0]?.now);
  }

  for (const skewSeconds of [3600, -3600]) {
    it(`reads the database's time, not its own, with its clock ${skewSeconds > 0 ? 'an hour ahead' : 'an hour behind'}, and shows a stored time on its own clock`, async function () {
      const clock = new DatabaseClock(opened.database.knex, () => Date.now() + skewSeconds * 1000);
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

  it('refuses to tell the time before its first measurement: nothing is stamped on an unknown clock', async function () {
    const clock = new DatabaseClock(opened.database.knex);
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
