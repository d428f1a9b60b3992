import { expect } from 'chai';
import type { Knex } from 'knex';
import { IronlimeMigrationSource, MIGRATION_LOCK_CLEARED_WARNING, MIGRATIONS_TABLE, migrateLatest } from '../../lib/db/migrate.js';
import { MIGRATION_LOCK_CLASS } from '../../lib/db/migration-lock.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { migrationSchemas } from './helpers/migration-schemas.js';

const ALL = MIGRATIONS.map((migration) => migration.name);
/** The non-transactional migration an upgrade from before it runs: knex commits its lock row first. */
const CUT = MIGRATIONS.findIndex((migration) => migration.name === '20261206110000-verifier-history-tenant');

type Outcome = { ok: true; names: string[] } | { ok: false; code: unknown; message: string };

function outcome(running: Promise<string[]>): Promise<Outcome> {
  return running.then(
    (names) => ({ ok: true, names }),
    (error: Error) => ({ ok: false, code: (error as { code?: unknown }).code, message: error.message }),
  );
}

describe('migration lock: a knex lock row whose setter is still migrating [postgres]', function () {
  this.timeout(120_000);
  const { admin, freshSchema, service, lockRow, endMigrationLockSession } = migrationSchemas();
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(String((warning as { code?: string }).code));
  };

  before(() => process.on('warning', onWarning));
  after(() => process.off('warning', onWarning));
  beforeEach(() => {
    warnings.length = 0;
  });

  async function appliedRows(schema: string): Promise<string[]> {
    return (await admin.withSchema(schema).table(MIGRATIONS_TABLE).orderBy('id').pluck('name')) as string[];
  }

  /** The release before history-tenant, applied by knex alone, and a transaction holding that migration inside its ALTER. */
  async function upgradeHeldInsideHistoryTenant(knex: Knex, schema: string): Promise<Knex.Transaction> {
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, CUT)), tableName: MIGRATIONS_TABLE });
    const blocker = await admin.transaction();
    await blocker.raw('lock table ??.verifier_attestation_history in access exclusive mode', [schema]);
    return blocker;
  }

  it('a start whose lock session ends mid-migration stops at the next migration, and a second start waits for it instead of clearing its row', async () => {
    const schema = await freshSchema();
    const a = await service(schema);
    const blocker = await upgradeHeldInsideHistoryTenant(a.knex, schema);
    const aRun = outcome(migrateLatest(a.knex, { lockWaitMs: 5_000 }));
    await pollUntil({ timeoutMs: 20_000, intervalMs: 20 }, 'A migrating', async () => (await lockRow(schema)) === 1);
    // An idle-in-transaction reaper (or a reset of that one connection) ends A's lock session only.
    expect(await endMigrationLockSession(schema)).to.deep.equal([{ ended: true }]);

    const b = await service(schema);
    const bRun = outcome(migrateLatest(b.knex, { lockWaitMs: 20_000 }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(warnings, 'B cleared the lock row of A, still migrating').to.not.include(MIGRATION_LOCK_CLEARED_WARNING);
      expect(await lockRow(schema)).to.equal(1);
    } finally {
      await blocker.rollback();
    }

    const aResult = await aRun;
    expect(aResult).to.include({ ok: false, code: 'ERR_DATABASE_UNAVAILABLE' });
    expect(aResult.ok === false && aResult.message).to.include('migration lock was lost');
    const bResult = await bRun;
    expect(bResult.ok, JSON.stringify(bResult)).to.equal(true);
    expect(await appliedRows(schema)).to.deep.equal(ALL);
    expect(await lockRow(schema)).to.equal(0);
    expect(warnings).to.not.include(MIGRATION_LOCK_CLEARED_WARNING);
  });

  it('a start does not clear the lock row of a migrator that takes no migration lock (an older release) while it migrates', async () => {
    const schema = await freshSchema();
    const old = await service(schema);
    const blocker = await upgradeHeldInsideHistoryTenant(old.knex, schema);
    const oldRun = old.knex.migrate
      .latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, CUT + 1)), tableName: MIGRATIONS_TABLE })
      .then(
        () => 'ok',
        (error: Error) => error.message,
      );
    await pollUntil({ timeoutMs: 20_000, intervalMs: 20 }, 'the older release migrating', async () => (await lockRow(schema)) === 1);

    const fresh = await service(schema);
    const freshRun = outcome(migrateLatest(fresh.knex, { lockWaitMs: 20_000 }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(warnings, "the start cleared a live migrator's lock row").to.not.include(MIGRATION_LOCK_CLEARED_WARNING);
    } finally {
      await blocker.rollback();
    }

    expect(await oldRun).to.equal('ok');
    expect(await freshRun).to.deep.equal({ ok: true, names: ALL.slice(CUT + 1) });
    expect(await appliedRows(schema)).to.deep.equal(ALL);
  });

  it('a lock row set by a session that is not an ironlime migrator, and left set, fails the start after its wait instead of being cleared', async () => {
    const schema = await freshSchema();
    const { knex } = await service(schema);
    expect(await migrateLatest(knex)).to.deep.equal(ALL);
    await admin.withSchema(schema).table(`${MIGRATIONS_TABLE}_lock`).update({ is_locked: 1 });
    const result = await outcome(migrateLatest(knex, { lockWaitMs: 600 }));
    expect(result).to.include({ ok: false, code: 'ERR_DATABASE_UNAVAILABLE' });
    expect(result.ok === false && result.message).to.include(`${MIGRATIONS_TABLE}_lock`);
    expect(warnings).to.not.include(MIGRATION_LOCK_CLEARED_WARNING);
    expect(await lockRow(schema)).to.equal(1);
  });

  it('a start whose lock session ends while it waits for the lock fails with ERR_DATABASE_UNAVAILABLE, and a later start migrates', async () => {
    const schema = await freshSchema();
    const { knex } = await service(schema);
    const holder = await admin.transaction();
    try {
      await holder.raw('select pg_advisory_xact_lock(?, hashtext(?))', [MIGRATION_LOCK_CLASS, schema]);
      // Only a session opened from here on can be this start's (other schemas' tests may share the server).
      const since = ((await admin.raw('select clock_timestamp() as now')) as { rows: { now: Date }[] }).rows[0]?.now ?? new Date(0);
      const started = Date.now();
      const waiting = outcome(migrateLatest(knex, { lockWaitMs: 30_000 }));
      // A session that holds its migration lock shows the same last query while its start migrates (other test
      // files' starts run beside this one): only a session still without the lock is this start's waiter.
      const waiter = async (): Promise<number[]> =>
        (
          (await admin.raw(
            `select pid from pg_stat_activity a where query like 'select pg_try_advisory_xact_lock%' and backend_start >= ? and pid <> pg_backend_pid()
               and not exists (select 1 from pg_locks l where l.pid = a.pid and l.locktype = 'advisory' and l.granted and l.classid = ?::oid and l.objsubid = 2)`,
            [since, MIGRATION_LOCK_CLASS],
          )) as { rows: { pid: number }[] }
        ).rows.map((row) => row.pid);
      await pollUntil({ timeoutMs: 10_000, intervalMs: 20 }, 'the start waiting', async () => (await waiter()).length > 0);
      for (const pid of await waiter()) await admin.raw('select pg_terminate_backend(?)', [pid]);
      const result = await waiting;
      expect(Date.now() - started).to.be.below(10_000);
      expect(result).to.include({ ok: false, code: 'ERR_DATABASE_UNAVAILABLE' });
      expect(result.ok === false && result.message).to.include('migration lock');
    } finally {
      await holder.rollback();
    }
    expect(await migrateLatest(knex, { lockWaitMs: 10_000 })).to.deep.equal(ALL);
  });
});
