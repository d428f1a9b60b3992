import type { Knex } from 'knex';

/**
 * The signed audit history: one hash chain per stream (an agent id, or `fleet`). `audit_heads` holds
 * each stream's last seq and hash; appending locks that row, so processes sharing one PostgreSQL
 * never fork a chain. Text columns keep the exact strings that were hashed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_heads', (table) => {
    table.string('stream', 255).primary();
    table.bigInteger('seq').notNullable();
    table.string('hash', 64).notNullable();
  });
  await knex.schema.createTable('audit_records', (table) => {
    table.string('stream', 255).notNullable();
    table.bigInteger('seq').notNullable();
    table.text('at').notNullable();
    table.text('actor').notNullable();
    table.text('action').notNullable();
    table.string('agent_id', 255).nullable();
    // Canonical JSON; text, not jsonb, so the hashed bytes come back unchanged.
    table.text('details').notNullable();
    table.string('prev_hash', 64).notNullable();
    table.string('hash', 64).notNullable();
    table.text('signature').notNullable();
    table.primary(['stream', 'seq']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_records');
  await knex.schema.dropTable('audit_heads');
}
