import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { databaseFact } from '../../lib/cli/service-command.js';
import { createDatabase, redactUrl } from '../../lib/db/database-factory.js';
import { IronlimeMigrationSource, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';

const ironlime = (...args: string[]): Promise<CliRun> => runCli(args);

async function attestationColumnNullable(knex: Knex): Promise<boolean | undefined> {
  const info = (await knex('nodes').columnInfo()) as unknown as Record<string, { nullable: boolean }>;
  return info['attestation_interface']?.nullable;
}

describe('ironlime db', function () {
  let dataDir: string;
  beforeEach(function () {
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-cli-'));
  });
  afterEach(function () {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('migrate with no URL creates the nodes table in PGlite under --data-dir, then rollback --all drops it', async function () {
    const first = await ironlime('db', 'migrate', '--data-dir', dataDir);
    expect(first.code).to.equal(0);
    expect(first.stdout).to.equal(
      [`applied ${MIGRATIONS.length} migration(s) on PGlite in ${dataDir}:`, ...MIGRATIONS.map((m) => `  ${m.name}`)].join('\n') + '\n',
    );
    const again = await ironlime('db', 'migrate', '--data-dir', dataDir);
    expect(again).to.deep.equal({ code: 0, stdout: `nothing to do (PGlite in ${dataDir})\n`, stderr: '' });

    const database = await createDatabase({ dataDir });
    try {
      expect(await attestationColumnNullable(database.knex)).to.equal(true);
    } finally {
      await database.close();
    }
    const back = await ironlime('db', 'rollback', '--all', '--data-dir', dataDir);
    expect(back.code).to.equal(0);
    expect(back.stdout).to.match(new RegExp(`^rolled back ${MIGRATIONS.length} migration\\(s\\)`));
  });

  it('migrate --database uses PostgreSQL; a plain rollback refuses the batch of a first install (every table), --all undoes it', async function () {
    const schema = `test_${randomBytes(8).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    // The server applies `options` at connection start, so the CLI works in the throwaway schema.
    // The test server trusts every local connection, so the password parameter is sent and not needed.
    const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}&password=s3cret-query`;
    const hasNodes = (): Promise<boolean> => admin.schema.withSchema(schema).hasTable('nodes');
    try {
      const run = await ironlime('db', 'migrate', '--database', url, '--data-dir', dataDir);
      expect(run.code).to.equal(0);
      expect(run.stdout).to.contain(`applied ${MIGRATIONS.length} migration(s) on postgres://`);
      expect(run.stdout).to.contain('password=***').and.not.contain('s3cret-query');
      const info = (await admin.withSchema(schema).table('nodes').columnInfo()) as unknown as Record<string, { nullable: boolean }>;
      expect(info['attestation_interface']?.nullable).to.equal(true);

      // One batch holds every migration: a plain rollback would drop every table, as --all does.
      const refused = await ironlime('db', 'rollback', '--database', url);
      expect(refused.code, refused.stderr).to.equal(2);
      expect(refused.stderr).to.equal(
        'ironlime: db rollback: the last batch holds every ironlime migration (the first install): undoing it drops every ironlime table and its data; give --all to do that\n',
      );
      expect(await hasNodes()).to.equal(true);

      const all = await ironlime('db', 'rollback', '--all', '--database', url);
      expect(all.code, all.stderr).to.equal(0);
      expect(await hasNodes()).to.equal(false);
    } finally {
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
    }
  });

  it('rollback undoes an upgrade\'s batch alone, then refuses the first install\'s without --all', async function () {
    const schema = `test_${randomBytes(8).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const installed = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
    const newest = MIGRATIONS[MIGRATIONS.length - 1]!.name;
    try {
      // The install before an upgrade: every migration but the newest, in one batch.
      await installed.migrate.latest({ migrationSource: new IronlimeMigrationSource(MIGRATIONS.slice(0, -1)), tableName: MIGRATIONS_TABLE });
      const upgrade = await ironlime('db', 'migrate', '--database', url);
      expect(upgrade.stdout).to.contain('applied 1 migration(s) on postgres://').and.contain(newest);

      const back = await ironlime('db', 'rollback', '--database', url);
      expect(back.code, back.stderr).to.equal(0);
      expect(back.stdout).to.contain('rolled back 1 migration(s)').and.contain(newest);
      expect(await admin.schema.withSchema(schema).hasTable('nodes')).to.equal(true);

      const again = await ironlime('db', 'rollback', '--database', url);
      expect(again.code).to.equal(2);
      expect(again.stderr).to.contain('give --all to do that');
      expect(await admin.schema.withSchema(schema).hasTable('nodes')).to.equal(true);
    } finally {
      await installed.destroy();
      await admin.raw('drop schema if exists ?? cascade', [schema]);
      await admin.destroy();
    }
  });

  it('reports an unreachable server with a coded error and exit code 2', async function () {
    const run = await ironlime('db', 'migrate', '--database', 'postgres://nobody:secret@127.0.0.1:1/none');
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(/^ironlime: database unavailable: postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none: /);
    expect(run.stderr).to.not.contain('secret');
    const query = await ironlime('db', 'migrate', '--database', 'postgres://nobody@127.0.0.1:1/none?sslmode=disable&PassWord=secret1&sslpassword=secret2');
    expect(query.code).to.equal(2);
    expect(query.stderr).to.match(/^ironlime: database unavailable: postgres:\/\/nobody@127\.0\.0\.1:1\/none\?sslmode=disable&PassWord=\*\*\*&sslpassword=\*\*\*: /);
  });

  it('masks a password however the URL carries it, wherever the URL is printed', function () {
    expect(redactUrl('postgres://u:pw1@db/x?Password=pw2&SSLPASSWORD=pw3&sslmode=require&application_name=a')).to.equal(
      'postgres://u:***@db/x?Password=***&SSLPASSWORD=***&sslmode=require&application_name=a',
    );
    // A percent-encoded name is the same parameter to pg.
    expect(redactUrl('postgres://db/x?%70assword=pw4')).to.equal('postgres://db/x?password=***');
    expect(redactUrl('postgres://db/x?sslmode=require')).to.equal('postgres://db/x?sslmode=require');
    // The services' start-up line (registrar, verifier, broker) and the fleet's go through it.
    expect(databaseFact('postgres', '/data', 'postgres://ironlime@db:5432/ironlime?password=pw5')).to.equal('postgres://ironlime@db:5432/ironlime?password=***');
  });

  it('rejects an invalid IRONLIME_* variable before touching any database', async function () {
    process.env['IRONLIME_DATABASE_URL'] = 'mysql://db/x';
    try {
      const run = await ironlime('db', 'migrate', '--data-dir', dataDir);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.equal('ironlime: invalid config: databaseUrl: must be a postgres:// or postgresql:// URL\n');
    } finally {
      delete process.env['IRONLIME_DATABASE_URL'];
    }
  });
});
