import { expect } from 'chai';
import type { Knex } from 'knex';
import {
  appliedMigrations,
  IronlimeMigrationSource,
  migrateLatest,
  migrateRollbackAll,
  migrateRollbackLastBatch,
  MIGRATION_LOCK_CLEARED_WARNING,
  MIGRATIONS_TABLE,
} from '../../lib/db/migrate.js';
import { MIGRATING_APPLICATION_PREFIX } from '../../lib/db/migration-lock.js';
import { MIGRATIONS } from '../../migrations/index.js';
import { forEachDatabase } from '../helpers/databases.js';

const ALL = MIGRATIONS.map((migration) => migration.name);

async function columnsOf(knex: Knex, table: string): Promise<Record<string, { nullable: boolean; defaultValue: string | null }>> {
  const info = (await knex(table).columnInfo()) as unknown as Record<string, { nullable: boolean; defaultValue: string | null }>;
  return info;
}

describe('migrations list', function () {
  it('is ordered by its UTC timestamp prefix, with unique names', function () {
    expect(ALL).to.deep.equal([...ALL].sort());
    expect(new Set(ALL).size).to.equal(ALL.length);
    for (const name of ALL) {
      expect(name).to.match(/^\d{14}-[a-z0-9-]+$/);
    }
  });
});

forEachDatabase('migrations', (fixture) => {
  it('goes latest → rollback → latest, with a nullable attestation_interface', async function () {
    const { knex } = fixture.database;
    expect(await migrateLatest(knex)).to.deep.equal(ALL);
    expect(await migrateLatest(knex)).to.deep.equal([]);
    expect(await appliedMigrations(knex)).to.deep.equal(ALL);
    const columns = await columnsOf(knex, 'nodes');
    expect(columns['attestation_interface']?.nullable).to.equal(true);
    expect(columns['last_attestation_status']?.nullable).to.equal(true);
    expect(columns['last_attestation_at']?.nullable).to.equal(true);
    expect(await knex.schema.hasTable(MIGRATIONS_TABLE)).to.equal(true);
    expect(await knex.schema.hasTable('knex_migrations')).to.equal(false);

    expect(await migrateRollbackAll(knex)).to.deep.equal([...ALL].reverse());
    expect(await knex.schema.hasTable('nodes')).to.equal(false);
    expect(await appliedMigrations(knex)).to.deep.equal([]);

    expect(await migrateLatest(knex)).to.deep.equal(ALL);
    expect(await knex.schema.hasColumn('nodes', 'attestation_interface')).to.equal(true);
  });

  it('undoes one migration at a time and keeps rows across the upgrade', async function () {
    const { knex } = fixture.database;
    await migrateRollbackAll(knex);
    const firstOnly = new IronlimeMigrationSource(MIGRATIONS.slice(0, 1));
    await knex.migrate.latest({ migrationSource: firstOnly, tableName: MIGRATIONS_TABLE });
    await knex('nodes').insert({ uuid: '6f1c3a52-9a53-4d7e-8f0e-2f3c2b1a0d9e', name: 'before-upgrade' });
    expect(await migrateLatest(knex)).to.deep.equal(ALL.slice(1));
    const row = (await knex('nodes').where({ name: 'before-upgrade' }).first()) as Record<string, unknown>;
    expect(row['attestation_interface']).to.equal(null);
    expect(row['last_attestation_event_ids']).to.deep.equal([]);

    expect(await migrateRollbackLastBatch(knex)).to.deep.equal(ALL.slice(1).reverse());
    expect(await knex.schema.hasColumn('nodes', 'attestation_interface')).to.equal(false);
    const [count] = await knex('nodes').count({ n: '*' });
    expect(Number(count?.n)).to.equal(1);
    await migrateLatest(knex);
  });

  it('clears the knex lock row left set by a process killed while migrating, and says so', async function () {
    const { knex } = fixture.database;
    await migrateRollbackAll(knex);
    await migrateLatest(knex);
    // As a migrator of this schema sets it (its sessions' name), from a session that then leaves that name.
    const leftSet = (): Promise<unknown> =>
      knex.transaction(async (trx) => {
        await trx.raw(`select set_config('application_name', ? || hashtext(coalesce(current_schema(), '')), true)`, [MIGRATING_APPLICATION_PREFIX]);
        return trx(`${MIGRATIONS_TABLE}_lock`).update({ is_locked: 1 });
      });
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      await leftSet();
      expect(await migrateRollbackLastBatch(knex)).to.deep.equal([...ALL].reverse());
      await leftSet();
      expect(await migrateLatest(knex)).to.deep.equal(ALL);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => (warning as { code?: string }).code === MIGRATION_LOCK_CLEARED_WARNING)).to.have.length(2);
    expect(await knex(`${MIGRATIONS_TABLE}_lock`).pluck('is_locked')).to.deep.equal([0]);
  });
});
