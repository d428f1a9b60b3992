import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Database } from '../../lib/db/database-factory.js';
import { appliedMigrations, MIGRATION_LOCK_CLEARED_WARNING, MIGRATIONS_TABLE, migrateLatest } from '../../lib/db/migrate.js';
import { MIGRATION_LOCK_CLASS } from '../../lib/db/migration-lock.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { migrationSchemas } from './helpers/migration-schemas.js';

const ALL = MIGRATIONS.map((migration) => migration.name);

/** A service's start in a process of its own: open the database on schema argv[3], migrate. */
const STARTER =
  'const [{ createDatabase }, { migrateLatest }] = await Promise.all([import(process.argv[1]), import(process.argv[2])]);' +
  'const database = await createDatabase({ url: process.argv[3], dataDir: process.argv[4], searchPath: process.argv[5] });' +
  'await migrateLatest(database.knex);';
const DIST_DB = path.resolve(import.meta.dirname, '../../lib/db');

describe('migration lock [postgres]', function () {
  this.timeout(120_000);
  const { admin, freshSchema, service, lockRow, endMigrationLockSession } = migrationSchemas();

  for (const upgrade of [false, true]) {
    it(`four services starting together on a ${upgrade ? 'schema whose bookkeeping tables exist (an upgrade)' : 'fresh schema'} all start: one migrates, the others wait for it`, async () => {
      const schema = await freshSchema();
      const services = await Promise.all([1, 2, 3, 4].map(() => service(schema)));
      if (upgrade) expect(await appliedMigrations((services[0] as Database).knex)).to.deep.equal([]);
      const results = await Promise.allSettled(services.map((database) => migrateLatest(database.knex)));
      const failures = results.flatMap((result) => (result.status === 'rejected' ? [String(result.reason)] : []));
      expect(failures).to.deep.equal([]);
      const applied = results.map((result) => (result.status === 'fulfilled' ? result.value : []));
      expect(applied.filter((names) => names.length > 0)).to.deep.equal([ALL]);
      expect(await appliedMigrations((services[1] as Database).knex)).to.deep.equal(ALL);
      expect(await lockRow(schema)).to.equal(0);
    });
  }

  it('a service SIGKILLed while it migrates does not block the next start, which finishes the migrations', async () => {
    const schema = await freshSchema();
    const child = spawn(process.execPath, [
      '--input-type=module',
      '-e',
      STARTER,
      path.join(DIST_DB, 'database-factory.js'),
      path.join(DIST_DB, 'migrate.js'),
      TEST_DATABASE_URL,
      tmpdir(),
      schema,
    ]);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // A fresh schema's batch holds a migration that runs outside a transaction, so knex commits its
    // lock row before the first migration: once another session sees it, the child is migrating.
    await pollUntil({ timeoutMs: 30_000, intervalMs: 5 }, 'the child migrating', async () => (await lockRow(schema).catch(() => undefined)) === 1);
    child.kill('SIGKILL');
    await exited;
    const applied = (await admin.withSchema(schema).table(MIGRATIONS_TABLE).pluck('name')) as string[];
    expect(applied.length).to.be.below(ALL.length);
    expect(await lockRow(schema)).to.equal(1);

    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const { knex } = await service(schema);
      expect(await migrateLatest(knex, { lockWaitMs: 20_000 })).to.deep.equal(ALL.filter((name) => !applied.includes(name)));
      expect(await appliedMigrations(knex)).to.deep.equal(ALL);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(await lockRow(schema)).to.equal(0);
    expect(warnings.map((warning) => (warning as { code?: string }).code)).to.include(MIGRATION_LOCK_CLEARED_WARNING);
  });

  it('a start waits while another session migrates the schema, and past its wait fails naming that session', async () => {
    const schema = await freshSchema();
    const { knex } = await service(schema);
    const holder = await admin.transaction();
    try {
      const pid = ((await holder.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows[0]?.pid;
      await holder.raw('select pg_advisory_xact_lock(?, hashtext(?))', [MIGRATION_LOCK_CLASS, schema]);
      let waiterDone = false;
      const waiter = migrateLatest(knex, { lockWaitMs: 60_000 }).finally(() => {
        waiterDone = true;
      });
      const other = await service(schema);
      const failure = await migrateLatest(other.knex, { lockWaitMs: 300 }).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
      expect(failure?.message).to.include(`schema "${schema}"`).and.include(`session pid ${pid}`);
      expect(waiterDone).to.equal(false);
      expect(await admin.schema.withSchema(schema).hasTable(MIGRATIONS_TABLE)).to.equal(false);
      await holder.commit();
      expect(await waiter).to.deep.equal(ALL);
    } finally {
      if (!holder.isCompleted()) await holder.rollback();
    }
  });

  it('a start waiting for the lock holds no snapshot while it waits (a concurrent index build anywhere would wait for it)', async () => {
    const schema = await freshSchema();
    // Named after the schema: other tests' starts poll for their own schemas' locks on the same database.
    const { knex } = await service(schema, schema);
    const pollers = async (): Promise<{ pid: number; xmin: string | null }[]> =>
      ((await admin.raw(
        `select pid, backend_xmin::text as xmin from pg_stat_activity
          where datname = current_database() and application_name = ? and state = 'idle in transaction'
            and query like 'select pg_try_advisory_xact_lock(%'`,
        [schema],
      )) as { rows: { pid: number; xmin: string | null }[] }).rows;
    const before = new Set((await pollers()).map((row) => row.pid));
    const holder = await admin.transaction();
    try {
      await holder.raw('select pg_advisory_xact_lock(?, hashtext(?))', [MIGRATION_LOCK_CLASS, schema]);
      const waiter = migrateLatest(knex, { lockWaitMs: 60_000 });
      let ours: { pid: number; xmin: string | null } | undefined;
      await pollUntil({ timeoutMs: 30_000, intervalMs: 20 }, 'the start polling for the lock', async () => {
        ours = (await pollers()).find((row) => !before.has(row.pid));
        return ours !== undefined;
      });
      // Between two polls the waiter's transaction sits idle: that is when a snapshot would be kept.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const now = (await pollers()).find((row) => row.pid === ours?.pid);
      expect(now, 'the waiter is still polling').to.not.equal(undefined);
      expect(now?.xmin).to.equal(null);
      await holder.commit();
      expect(await waiter).to.deep.equal(ALL);
    } finally {
      if (!holder.isCompleted()) await holder.rollback();
    }
  });

  it('a start whose lock session ends while it migrates stops before its next migration and fails, and the next start finishes the migrations', async () => {
    const schema = await freshSchema();
    const { knex } = await service(schema);
    const migrating = migrateLatest(knex).then(
      () => undefined,
      (error: Error) => error,
    );
    await pollUntil({ timeoutMs: 30_000, intervalMs: 5 }, 'the start migrating', async () => (await lockRow(schema).catch(() => undefined)) === 1);
    expect(await endMigrationLockSession(schema)).to.deep.equal([{ ended: true }]);
    const failure = await migrating;
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include('migration lock was lost while migrating');
    const applied = (await admin.withSchema(schema).table(MIGRATIONS_TABLE).orderBy('id').pluck('name')) as string[];
    expect(applied.length).to.be.below(ALL.length);
    expect(await migrateLatest(knex)).to.deep.equal(ALL.slice(applied.length));
    expect(await appliedMigrations(knex)).to.deep.equal(ALL);
    expect(await lockRow(schema)).to.equal(0);
  });
});
