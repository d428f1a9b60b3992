import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import knexFactory from 'knex';
import { createDatabase, type Database } from '../../../lib/db/database-factory.js';

/** The PostgreSQL server tests share (same default as test/helpers/databases.ts). */
const TEST_DATABASE_URL = process.env['IRONLIME_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A database in a fresh random schema of the shared test server; `dispose` drops the schema. */
export async function openTestSchema(): Promise<{ database: Database; dispose(): Promise<void> }> {
  const schema = `test_${randomBytes(8).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  await admin.raw('create schema ??', [schema]);
  const database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: tmpdir(), searchPath: schema });
  return {
    database,
    async dispose() {
      await database.close();
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
    },
  };
}
