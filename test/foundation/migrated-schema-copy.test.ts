import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { appliedMigrations, migrateLatest, migrateRollbackAll } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { openMigratedTestSchema, openTestSchema, TEST_DATABASE_URL, type OpenedDatabase } from '../helpers/databases.js';

async function schemaOf(knex: Knex): Promise<string> {
  return ((await knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name ?? '';
}

/**
 * A CHECK constraint's text with its casts and parentheses left out: PostgreSQL prints a constraint
 * it parsed from its own printed text with its casts moved (`ANY ((ARRAY['a'::character varying])::text[])`
 * becomes `ANY (ARRAY[('a'::character varying)::text])`), the same test in other words.
 */
function checkWithoutCasts(line: string): string {
  return line.includes(' CHECK (') ? line.replaceAll(/::(?:character varying|text)(?:\[\])?|[()]/g, '') : line;
}

/** The schema's definitions as pg_dump prints them, its name replaced by `<schema>`. */
async function definitions(knex: Knex): Promise<string> {
  const schema = await schemaOf(knex);
  const { stdout } = await promisify(execFile)('pg_dump', ['--dbname', TEST_DATABASE_URL, '--schema', schema, '--schema-only', '--no-owner', '--no-privileges'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  // pg_dump's `\restrict` guard carries a random key each run.
  return stdout
    .split('\n')
    .filter((line) => !line.startsWith('\\'))
    .map(checkWithoutCasts)
    .join('\n')
    .replaceAll(schema, '<schema>');
}

/**
 * Every table's rows by table name; of the migrations' bookkeeping, not when each ran nor which
 * session last held knex's lock row.
 */
async function contents(knex: Knex): Promise<Record<string, unknown[]>> {
  const tables = (await knex('information_schema.tables').select('table_name').where({ table_schema: await schemaOf(knex) }).orderBy('table_name')) as { table_name: string }[];
  const rows: Record<string, unknown[]> = {};
  for (const { table_name: table } of tables) {
    const all = (await knex(table).select('*')) as Record<string, unknown>[];
    rows[table] = all
      .map(({ migration_time: _time, locked_by_application: _application, locked_by_pid: _pid, ...row }) => row).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  return rows;
}

/**
 * Test files get their migrated schemas as copies of one migrated per process (`openMigratedTestSchema`);
 * a copy must be what the migrations make, down to its functions' search paths and its bookkeeping.
 */
describe('migrated test schemas: a copy equals a schema the migrations made (real PostgreSQL)', function () {
  this.timeout(120_000);
  let migrated: OpenedDatabase;
  let copies: OpenedDatabase[];

  before(async function () {
    migrated = await openTestSchema();
    await migrateLatest(migrated.database.knex);
    copies = [await openMigratedTestSchema(), await openMigratedTestSchema()];
  });

  after(async function () {
    for (const opened of [migrated, ...copies]) await opened?.dispose();
  });

  it('has the same tables, columns, indexes, constraints, sequences, functions and triggers, in its own name', async function () {
    const made = await definitions(migrated.database.knex);
    expect(made).to.contain('CREATE TRIGGER verifier_agent_content_version');
    expect(made).to.contain("SET search_path TO '<schema>'");
    for (const copy of copies) {
      expect(await schemaOf(copy.database.knex)).to.not.equal(await schemaOf(migrated.database.knex));
      expect(await definitions(copy.database.knex)).to.equal(made);
    }
  });

  it('has the same rows: every migration recorded as applied, nothing pending', async function () {
    const made = await contents(migrated.database.knex);
    for (const copy of copies) {
      expect(await contents(copy.database.knex)).to.deep.equal(made);
      expect(await appliedMigrations(copy.database.knex)).to.deep.equal(MIGRATIONS.map((migration) => migration.name));
      expect(await migrateLatest(copy.database.knex)).to.deep.equal([]);
    }
  });

  it('copies are independent: rolling one back leaves the others, and it migrates again to the same schema', async function () {
    const [first, second] = copies as [OpenedDatabase, OpenedDatabase];
    await migrateRollbackAll(first.database.knex);
    expect(await first.database.knex.schema.hasTable('verifier_agents')).to.equal(false);
    expect(await second.database.knex.schema.hasTable('verifier_agents')).to.equal(true);
    await migrateLatest(first.database.knex);
    expect(await definitions(first.database.knex)).to.equal(await definitions(migrated.database.knex));
  });
});
