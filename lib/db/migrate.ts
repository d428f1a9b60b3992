import type { Knex } from 'knex';
import { MIGRATIONS } from '../../migrations/index.js';
import { clearLeftoverLockRow, recordLockRowSetter } from './knex-lock-row.js';
import { DEFAULT_MIGRATION_LOCK_WAIT_MS, withMigrationLock } from './migration-lock.js';
import { withoutStatementBound } from './postgres-bounds.js';

export { MIGRATION_LOCK_CLEARED_WARNING } from './knex-lock-row.js';

/**
 * One schema change: its recorded name and the two directions, each run inside a transaction unless
 * `config.transaction` is false (the migration then opens its own, saying why).
 */
export interface IronlimeMigration {
  readonly name: string;
  readonly config?: { readonly transaction: boolean };
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/**
 * ironlime's own bookkeeping table (knex adds `<tableName>_lock`), so our migrations coexist with the
 * orchestrator's `knex_migrations` in the same database.
 */
export const MIGRATIONS_TABLE = 'ironlime_migrations';

/**
 * A knex `MigrationSource` over the imported modules of `migrations/index.ts`: the package ships
 * compiled code, so migrations are listed in order by import rather than found by scanning a folder.
 * `beforeEach` runs before each migration's up or down (the migration lock's `assertHeld`).
 */
export class IronlimeMigrationSource implements Knex.MigrationSource<IronlimeMigration> {
  constructor(
    private readonly migrations: readonly IronlimeMigration[] = MIGRATIONS,
    private readonly beforeEach: () => Promise<void> = () => Promise.resolve(),
  ) {}

  getMigrations(): Promise<IronlimeMigration[]> {
    return Promise.resolve([...this.migrations]);
  }

  getMigrationName(migration: IronlimeMigration): string {
    return migration.name;
  }

  getMigration(migration: IronlimeMigration): Promise<Knex.Migration> {
    return Promise.resolve({
      up: async (knex: Knex) => {
        await this.beforeEach();
        await migration.up(knex);
      },
      down: async (knex: Knex) => {
        await this.beforeEach();
        await migration.down(knex);
      },
      ...(migration.config === undefined ? {} : { config: { ...migration.config } }),
    });
  }
}

function migratorConfig(beforeEach?: () => Promise<void>): Knex.MigratorConfig {
  // knex runs each migration in a transaction (and a whole batch in one when every migration allows
  // it), so a failed upgrade leaves the schema as it was.
  return { migrationSource: new IronlimeMigrationSource(MIGRATIONS, beforeEach), tableName: MIGRATIONS_TABLE };
}

const LOCK_TABLE = `${MIGRATIONS_TABLE}_lock`;

export interface MigrateOptions {
  /**
   * How long to wait for another process's migrations of the same schema, for the migration lock and
   * then for knex's lock row (`DEFAULT_MIGRATION_LOCK_WAIT_MS` each).
   */
  readonly lockWaitMs?: number;
}

/**
 * Runs a knex migrator call that takes knex's lock row, under the migration lock (`withMigrationLock`),
 * on its migrator (sessions named as this schema's migrators) and without the per-statement bound of
 * `postgres-bounds.ts`: an index build on a large table, or a lock wait behind running services during
 * an upgrade, may take minutes. Before each migration it checks that the lock is still held.
 *
 * knex sets its lock row in a transaction of its own, committed, whenever a batch holds a migration
 * that runs outside a transaction (and for every rollback), and clears it at the end: a process killed
 * in between leaves it set, and knex then refuses every later run ("Migration table is already
 * locked"). Such a leftover is cleared once its setter is known to be gone (`clearLeftoverLockRow`);
 * the migrations cut off are taken up again (each is one transaction, or, when it runs outside one,
 * written to resume).
 */
function migrating<T>(knex: Knex, run: (migrator: Knex, config: Knex.MigratorConfig) => PromiseLike<T>, options: MigrateOptions): Promise<T> {
  const waitMs = options.lockWaitMs ?? DEFAULT_MIGRATION_LOCK_WAIT_MS;
  return withMigrationLock(
    knex,
    (held) =>
      withoutStatementBound(async () => {
        if (held.applicationName !== undefined) await recordLockRowSetter(knex, LOCK_TABLE, () => knex.migrate.list(migratorConfig()));
        await clearLeftoverLockRow(knex, LOCK_TABLE, held, waitMs);
        return run(held.migrator, migratorConfig(held.assertHeld));
      }),
    waitMs,
  );
}

/** Applies every pending migration; resolves to the names applied (empty when already up to date). */
export async function migrateLatest(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, (migrator, config) => migrator.migrate.latest(config), options)) as [number, string[]];
  return names;
}

/** Undoes the last batch of applied migrations; resolves to the names undone. */
export async function migrateRollbackLastBatch(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, (migrator, config) => migrator.migrate.rollback(config, false), options)) as [number, string[]];
  return names;
}

/**
 * Whether the last batch holds every applied ironlime migration: a schema migrated once (a first install,
 * or a service's first start), whose last-batch rollback would drop every table and its data.
 */
export async function lastBatchIsEveryMigration(knex: Knex): Promise<boolean> {
  if (!(await knex.schema.hasTable(MIGRATIONS_TABLE))) return false;
  const batches = (await knex(MIGRATIONS_TABLE).distinct('batch')) as unknown[];
  return batches.length === 1;
}

/** Undoes every applied ironlime migration, newest first; resolves to the names undone. */
export async function migrateRollbackAll(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, (migrator, config) => migrator.migrate.rollback(config, true), options)) as [number, string[]];
  return names;
}

/**
 * The names of applied migrations, oldest first. Under the migration lock: knex creates its
 * bookkeeping tables here when they are missing, which must not race another process's migrations.
 */
export async function appliedMigrations(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [completed] = (await withMigrationLock(knex, () => knex.migrate.list(migratorConfig()), options.lockWaitMs)) as [Array<{ name: string }>, unknown[]];
  return completed.map((entry) => entry.name);
}
