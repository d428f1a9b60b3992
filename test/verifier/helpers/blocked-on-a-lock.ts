import type { Knex } from 'knex';

/**
 * Waits (up to 2 s) until a statement of this database on `verifier_push_boot_logs` waits for a lock:
 * a write queued behind another transaction. Throws when none does, so a write that does not wait
 * fails the test.
 */
export async function blockedOnALock(knex: Knex): Promise<void> {
  for (let tries = 0; tries < 100; tries += 1) {
    const result = (await knex.raw(`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%verifier_push_boot_logs%'`)) as { rows: { n: number }[] };
    if ((result.rows[0]?.n ?? 0) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the write did not wait for a lock within 2 s');
}
