import type { Knex } from 'knex';
import { MIGRATIONS } from '../../migrations/index.js';
import { withMigrationLock } from './migration-lock.js';
import { withoutStatementBound } from './postgres-bounds.js';

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
 */
export class IronlimeMigrationSource implements Knex.MigrationSource<IronlimeMigration> {
  constructor(private readonly migrations: readonly IronlimeMigration[] = MIGRATIONS) {}

  getMigrations(): Promise<IronlimeMigration[]> {
    return Promise.resolve([...this.migrations]);
  }

  getMigrationName(migration: IronlimeMigration): string {
    return migration.name;
  }

  getMigration(migration: IronlimeMigration): Promise<Knex.Migration> {
    return Promise.resolve({ up: migration.up, down: migration.down, ...(migration.config === undefined ? {} : { config: { ...migration.config } }) });
  }
}

function migratorConfig(): Knex.MigratorConfig {
  // knex runs each migration in a transaction (and a whole batch in one when every migration allows
  // it), so a failed upgrade leaves the schema as it was.
  return { migrationSource: new IronlimeMigrationSource(), tableName: MIGRATIONS_TABLE };
}

/** The process warning's code when a start clears the knex lock of a migration that was cut off. */
export const MIGRATION_LOCK_CLEARED_WARNING = 'IRONLIME_MIGRATION_LOCK_CLEARED';

export interface MigrateOptions {
  /** How long to wait for another process's migrations of the same schema (`DEFAULT_MIGRATION_LOCK_WAIT_MS`). */
  readonly lockWaitMs?: number;
}

/**
 * Runs a knex migrator call that takes knex's lock row, under the migration lock (`withMigrationLock`)
 * and without the per-statement bound of `postgres-bounds.ts`: an index build on a large table, or a
 * lock wait behind running services during an upgrade, may take minutes.
 *
 * knex sets its lock row in a transaction of its own, committed, whenever a batch holds a migration
 * that runs outside a transaction (and for every rollback), and clears it at the end: a process killed
 * in between leaves it set, and knex then refuses every later run ("Migration table is already
 * locked"). Under the migration lock no other process migrates this schema, so a set row is such a
 * leftover and is cleared; the migrations cut off are taken up again (each is one transaction, or,
 * when it runs outside one, written to resume).
 */
function migrating<T>(knex: Knex, run: () => PromiseLike<T>, options: MigrateOptions): Promise<T> {
  return withMigrationLock(
    knex,
    () =>
      withoutStatementBound(async () => {
        await clearLeftoverLock(knex);
        return run();
      }),
    options.lockWaitMs,
  );
}

async function clearLeftoverLock(knex: Knex): Promise<void> {
  const lockTable = `${MIGRATIONS_TABLE}_lock`;
  if (!(await knex.schema.hasTable(lockTable))) return;
  const cleared = await knex(lockTable).where({ is_locked: 1 }).update({ is_locked: 0 });
  if (cleared > 0) {
    process.emitWarning(`cleared ${lockTable}: a process stopped while migrating (killed or crashed); its migrations run again now`, {
      code: MIGRATION_LOCK_CLEARED_WARNING,
    });
  }
}

/** Applies every pending migration; resolves to the names applied (empty when already up to date). */
export async function migrateLatest(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, () => knex.migrate.latest(migratorConfig()), options)) as [number, string[]];
  return names;
}

/** Undoes the last batch of applied migrations; resolves to the names undone. */
export async function migrateRollbackLastBatch(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, () => knex.migrate.rollback(migratorConfig(), false), options)) as [number, string[]];
  return names;
}

/** Undoes every applied ironlime migration, newest first; resolves to the names undone. */
export async function migrateRollbackAll(knex: Knex, options: MigrateOptions = {}): Promise<string[]> {
  const [, names] = (await migrating(knex, () => knex.migrate.rollback(migratorConfig(), true), options)) as [number, string[]];
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
