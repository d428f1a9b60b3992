import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { createMigratedSchema } from './migrated-schema-copy.js';
import { seedPgliteFolder } from './pglite-template.js';

/**
 * Runs database tests on BOTH real PostgreSQL and embedded PGlite.
 *
 *     forEachDatabase('node store', (fixture) => {
 *       it('round-trips a node', async () => {
 *         const store = new NodeStore(fixture.database);
 *         ...
 *       });
 *     }, { migrate: true });
 *
 * `forEachDatabase` declares one mocha `describe` per engine ("node store [postgres]", "… [pglite]").
 * Before the block's tests it opens a database; `fixture.database` is valid inside hooks and tests.
 *
 * - PostgreSQL: `IRONLIME_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`. Many
 *   test files (and engineers) share that database at once, so each block works in a fresh schema
 *   with a random name (`test_<hex>`) set as the connection's `searchPath`, dropped with CASCADE after.
 *   Write plain table names; never qualify them with `public.`.
 * - PGlite: one embedded database per test process (it takes seconds to start), a fresh schema
 *   per block, dropped after.
 *
 * With `migrate: true` the block starts with every ironlime migration applied. Tests inside one block
 * share its database: use unique keys (random uuids) or clean up in the test. A block that needs a
 * pristine schema per test declares its own `forEachDatabase` call.
 */
export interface DatabaseFixture {
  /** The open database of the current block (throws when read outside hooks and tests). */
  readonly database: Database;
  readonly kind: Database['kind'];
}

export interface ForEachDatabaseOptions {
  /** Apply every migration before the first test. */
  readonly migrate?: boolean;
}

/** The PostgreSQL server tests use. */
export const TEST_DATABASE_URL = process.env['IRONLIME_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export function forEachDatabase(
  title: string,
  body: (fixture: DatabaseFixture) => void,
  options: ForEachDatabaseOptions = {},
): void {
  for (const kind of ['postgres', 'pglite'] as const) {
    describe(`${title} [${kind}]`, function () {
      let opened: OpenedDatabase | undefined;
      const fixture: DatabaseFixture = {
        get database(): Database {
          if (opened === undefined) {
            throw new Error('fixture.database is only available inside hooks and tests');
          }
          return opened.database;
        },
        kind,
      };
      before(async function () {
        // PGlite compiles its WebAssembly and migrates: over a minute on a loaded host.
        this.timeout(180_000);
        if (kind === 'postgres') {
          opened = options.migrate === true ? await openMigratedTestSchema() : await openTestSchema();
        } else {
          opened = await openPglite();
          if (options.migrate === true) await migrateLatest(opened.database.knex);
        }
      });
      body(fixture);
      // Registered after the body's own hooks, so it runs after them (mocha runs a suite's `after`
      // hooks in the order they were declared): services a block closes in its `after` still have
      // their database then. Closed first, the database left a running verifier's rounds waiting 15 s
      // for a connection, and its close could fail with the pool's timeout.
      after(async function () {
        await opened?.dispose();
        opened = undefined;
      });
    });
  }
}

export interface OpenedDatabase {
  readonly database: Database;
  dispose(): Promise<void>;
}

/** A fresh random schema on the shared test server, dropped (with everything in it) on dispose. */
export async function openTestSchema(): Promise<OpenedDatabase> {
  const schema = `test_${randomBytes(8).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  await admin.raw('create schema ??', [schema]);
  return openCreatedSchema(schema, admin);
}

/**
 * A fresh random schema as `openTestSchema`'s, with every migration applied (`createMigratedSchema`:
 * a copy of one migrated schema per process). For tests of the migrations themselves, `openTestSchema`.
 */
export async function openMigratedTestSchema(): Promise<OpenedDatabase> {
  const schema = `test_${randomBytes(8).toString('hex')}`;
  await createMigratedSchema(TEST_DATABASE_URL, schema);
  return openCreatedSchema(schema, knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } }));
}

/** `schema`, just created, opened in its own pool; `admin` drops it on dispose. */
async function openCreatedSchema(schema: string, admin: Knex): Promise<OpenedDatabase> {
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

/**
 * A second database handle on the schema `knex` works in, on the test server but reached through
 * local port `port` (a test's TCP proxy in front of PostgreSQL), so a fault the proxy makes reaches
 * only what uses this handle.
 */
export async function openSchemaThroughPort(knex: Knex, port: number, dataDir: string = tmpdir()): Promise<Database> {
  const url = new URL(TEST_DATABASE_URL);
  url.port = String(port);
  const schema = ((await knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name;
  return createDatabase({ url: url.toString(), dataDir, searchPath: schema });
}

/**
 * One embedded PGlite per test process, started on first use: PGlite takes seconds to start, so
 * each block gets a fresh schema in it (as on PostgreSQL) instead of a database of its own. Blocks
 * run one after another and each closes its services in `after`, so the single PGlite session's
 * `search_path` always belongs to the block that is running.
 */
let sharedPglite: Promise<PGlite> | undefined;

function processPglite(): Promise<PGlite> {
  if (sharedPglite === undefined) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-pglite-'));
    process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
    // A copy of the process's initdb'd template: the process runs initdb once, also when a test seeds folders from it.
    sharedPglite = seedPgliteFolder(dataDir).then(async (folder) => {
      const pglite = new PGlite(folder);
      await pglite.waitReady;
      return pglite;
    });
  }
  return sharedPglite;
}

/** A fresh random schema in the process's PGlite, dropped on dispose; the PGlite stays open. */
async function openPglite(): Promise<OpenedDatabase> {
  const pglite = await processPglite();
  const schema = `test_${randomBytes(8).toString('hex')}`;
  await pglite.query(`create schema "${schema}"`);
  // knex-pglite closes its PGlite when knex is destroyed: hand it a view whose close does nothing.
  const keptOpen = new Proxy(pglite, {
    get(target, key) {
      if (key === 'close') return async () => undefined;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const knex = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: { pglite: keptOpen } as unknown as Knex.StaticConnectionConfig, searchPath: [schema] });
  const database: Database = { knex, kind: 'pglite', close: () => knex.destroy() };
  return {
    database,
    async dispose() {
      await database.close();
      await pglite.query(`drop schema if exists "${schema}" cascade`);
    },
  };
}
