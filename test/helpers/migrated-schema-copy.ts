import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import { createDatabase } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';

/** Stands for the schema's name in the kept dump. */
const SCHEMA_NAME = '__ironlime_migrated_schema__';

/**
 * The plain SQL of a schema with every migration applied, its name replaced by `SCHEMA_NAME`; made
 * once per test process; `undefined` when pg_dump could not dump it (not installed, older than the
 * server), and every schema is then migrated.
 */
let migratedSql: Promise<string | undefined> | undefined;

/**
 * Creates `schema` on the PostgreSQL server at `url` with every migration applied. Running the
 * migrations took 1.2–1.8 s per schema, in over a hundred test files; here the process migrates one
 * schema, keeps its pg_dump (tables, data, sequences, functions, triggers, indexes, constraints) and
 * replays it, the name replaced, in one transaction for each schema asked for. The copy is the migrated
 * schema's own dump, so it holds what the migrations made (test/foundation/migrated-schema-copy.test.ts
 * compares the two). Tests of the migrations themselves migrate an empty schema.
 */
export async function createMigratedSchema(url: string, schema: string): Promise<void> {
  migratedSql ??= dumpOfMigratedSchema(url);
  const sql = await migratedSql;
  if (sql !== undefined) return runScript(url, sql.replaceAll(SCHEMA_NAME, schema));
  await runScript(url, `create schema "${schema}"`);
  await migrateSchema(url, schema);
}

async function migrateSchema(url: string, schema: string): Promise<void> {
  const database = await createDatabase({ url, dataDir: tmpdir(), searchPath: schema });
  try {
    await migrateLatest(database.knex);
  } finally {
    await database.close();
  }
}

/** Migrates a schema of its own, dumps it as plain SQL with its name replaced by `SCHEMA_NAME`, drops it. */
async function dumpOfMigratedSchema(url: string): Promise<string | undefined> {
  const schema = `test_migrated_${randomBytes(8).toString('hex')}`;
  await runScript(url, `create schema "${schema}"`);
  try {
    await migrateSchema(url, schema);
    const { stdout } = await promisify(execFile)('pg_dump', ['--dbname', url, '--schema', schema, '--no-owner', '--no-privileges', '--inserts'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    // psql's meta-commands (pg_dump's `\restrict` guard) are not SQL: the server would refuse them.
    const sql = stdout
      .split('\n')
      .filter((line) => !line.startsWith('\\'))
      .join('\n');
    if (!sql.includes(`CREATE SCHEMA ${schema};`)) throw new Error('pg_dump did not dump the schema');
    return sql.replaceAll(schema, SCHEMA_NAME);
  } catch (error) {
    process.stderr.write(`migrated test schemas: pg_dump failed, every schema is migrated instead (${String(error)})\n`);
    return undefined;
  } finally {
    await runScript(url, `drop schema if exists "${schema}" cascade`);
  }
}

/** Runs `sql` (statements without parameters) in one implicit transaction on a connection of its own. */
async function runScript(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
