import type { Knex } from 'knex';
import { MIGRATIONS } from '../../migrations/index.js';
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

// Migrations run without the per-statement bound of `postgres-bounds.ts`: an index build on a large
// table, or a lock wait behind running services during an upgrade, may take minutes.

/** Applies every pending migration; resolves to the names applied (empty when already up to date). */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, names] = (await withoutStatementBound(() => knex.migrate.latest(migratorConfig()))) as [number, string[]];
  return names;
}

/** Undoes the last batch of applied migrations; resolves to the names undone. */
export async function migrateRollbackLastBatch(knex: Knex): Promise<string[]> {
  const [, names] = (await withoutStatementBound(() => knex.migrate.rollback(migratorConfig(), false))) as [number, string[]];
  return names;
}

/** Undoes every applied ironlime migration, newest first; resolves to the names undone. */
export async function migrateRollbackAll(knex: Knex): Promise<string[]> {
  const [, names] = (await withoutStatementBound(() => knex.migrate.rollback(migratorConfig(), true))) as [number, string[]];
  return names;
}

/** The names of applied migrations, oldest first. */
export async function appliedMigrations(knex: Knex): Promise<string[]> {
  const [completed] = (await knex.migrate.list(migratorConfig())) as [Array<{ name: string }>, unknown[]];
  return completed.map((entry) => entry.name);
}
