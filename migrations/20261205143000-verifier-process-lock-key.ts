import type { Knex } from 'knex';

/**
 * Issue 10, item 5: a verifier process on PostgreSQL holds a session advisory lock for its whole life
 * (`lib/verifier/process-lock.ts`) and records its key here on every beat, with the server instance the
 * beat was written on. A row whose lock nobody holds, written on the server instance running now, with
 * a beat older than a second, is a process that died (SIGKILL, crash): the others take its agents at
 * once instead of after their leases lapse (`lib/verifier/process-lock-sql.ts`).
 *
 * - `lock_key`: null when the process holds no lock (PGlite, a lost lock connection, a pooler, a
 *   process from before this column).
 * - `lock_instance`: the server's `pg_postmaster_start_time()` when the beat was written. After a
 *   restart or a failover every lock is gone at once; rows written before it do not match the server
 *   running now, so they are judged by heartbeat and leases until their process beats again. A
 *   timestamp, not its text: the text form follows each session's TimeZone and DateStyle.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_processes', (table) => {
    table.integer('lock_key').nullable();
    table.timestamp('lock_instance', { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_processes', (table) => {
    table.dropColumn('lock_instance');
    table.dropColumn('lock_key');
  });
}
