import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import knexFactory, { type Knex } from 'knex';
import { createDatabase, type Database } from '../../../lib/db/database-factory.js';
import { MIGRATIONS_TABLE } from '../../../lib/db/migrate.js';
import { MIGRATION_LOCK_CLASS } from '../../../lib/db/migration-lock.js';
import { TEST_DATABASE_URL } from '../../helpers/databases.js';

/** Empty schemas on the test server that services start and migrate on, seen from an admin pool of their own. */
export interface MigrationSchemas {
  /** A pool outside every service, for looking at and holding a schema's tables and locks. */
  readonly admin: Knex;
  /** A new empty schema, dropped after the suite. */
  readonly freshSchema: () => Promise<string>;
  /**
   * A service's own database handle (its own pool) on `schema`, closed after the suite; its sessions
   * carry `applicationName` when given (so a test finds them among other tests' sessions).
   */
  readonly service: (schema: string, applicationName?: string) => Promise<Database>;
  /** knex's migration lock row of `schema` (1 while a migrator holds it), undefined while the lock table is not there. */
  readonly lockRow: (schema: string) => Promise<number | undefined>;
  /** Ends the session holding `schema`'s migration lock (an idle-in-transaction reaper would); one row `{ ended: true }` a session ended. */
  readonly endMigrationLockSession: (schema: string) => Promise<{ ended: boolean }[]>;
}

/**
 * Registers an `after` hook of the enclosing `describe` that closes every service handle and drops
 * every schema, and gives the suite its schemas.
 */
export function migrationSchemas(): MigrationSchemas {
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 5 } });
  const schemas: string[] = [];
  const opened: Database[] = [];

  after(async () => {
    // A handle whose session a test ended may fail to close; its schema is dropped all the same.
    for (const database of opened) await database.close().catch(() => undefined);
    for (const schema of schemas) await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
  });

  return {
    admin,
    freshSchema: async () => {
      const schema = `test_${randomBytes(8).toString('hex')}`;
      schemas.push(schema);
      await admin.raw('create schema ??', [schema]);
      return schema;
    },
    service: async (schema, applicationName) => {
      const url = applicationName === undefined ? TEST_DATABASE_URL : withApplicationName(TEST_DATABASE_URL, applicationName);
      const database = await createDatabase({ url, dataDir: tmpdir(), searchPath: schema });
      opened.push(database);
      return database;
    },
    lockRow: async (schema) => {
      const rows = (await admin.withSchema(schema).table(`${MIGRATIONS_TABLE}_lock`).select('is_locked')) as { is_locked: number }[];
      return rows[0]?.is_locked;
    },
    endMigrationLockSession: async (schema) => {
      const ended = (await admin.raw(
        `select pg_terminate_backend(pid) as ended from pg_locks
          where locktype = 'advisory' and granted and classid = ?::oid and objid = hashtext(?)::oid and objsubid = 2`,
        [MIGRATION_LOCK_CLASS, schema],
      )) as { rows: { ended: boolean }[] };
      return ended.rows;
    },
  };
}

function withApplicationName(url: string, applicationName: string): string {
  const named = new URL(url);
  named.searchParams.set('application_name', applicationName);
  return named.toString();
}
