import type { Knex } from 'knex';

/**
 * Issue 10, item 5: a verifier process on PostgreSQL holds a session advisory lock for its whole life
 * (`lib/verifier/process-lock.ts`) and records its key here on every beat. A row whose lock nobody holds
 * is a process that died (SIGKILL, crash): the others take its agents at once instead of after their
 * leases lapse. Null: no lock (PGlite, a lost lock connection, a process from before this column).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_processes', (table) => {
    table.integer('lock_key').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_processes', (table) => {
    table.dropColumn('lock_key');
  });
}
