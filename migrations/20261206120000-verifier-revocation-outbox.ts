import type { Knex } from 'knex';

/**
 * Revocation notices not yet delivered to a configured receiver (a `--revocation-webhook`, an
 * in-process broker target): one row per notice and receiver, written in the transaction that stores
 * the verdict failing the agent, deleted once the receiver took the notice or refused it for good.
 * `next_attempt_at` is when the row may be tried next; a process delivering it moves it into the
 * future first (a lease), so another process skips it meanwhile (`RevocationOutbox`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_revocation_outbox', (table) => {
    table.bigIncrements('id').primary();
    table.text('receiver').notNullable();
    table.text('agent_id').notNullable();
    /** The signed envelope's JSON, sent as is on every attempt (receivers dedupe by its digest). */
    table.text('envelope').notNullable();
    table.integer('attempts').notNullable().defaultTo(0);
    table.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.text('last_error');
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['next_attempt_at'], 'verifier_revocation_outbox_due');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_revocation_outbox');
}
