import type { Knex } from 'knex';

/**
 * The resource broker's signed audit history, laid out as the verifier's (`audit_heads`,
 * `audit_records` with `batch_path`) in tables of its own: the broker signs with its own key, and a
 * broker sharing the verifier's database must not put records of another key into the verifier's chains.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('broker_audit_heads', (table) => {
    table.string('stream', 255).primary();
    table.bigInteger('seq').notNullable();
    table.string('hash', 64).notNullable();
  });
  await knex.schema.createTable('broker_audit_records', (table) => {
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
    table.text('batch_path').notNullable().defaultTo('[]');
    table.primary(['stream', 'seq']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('broker_audit_records');
  await knex.schema.dropTable('broker_audit_heads');
}
