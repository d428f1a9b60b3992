import type { Knex } from 'knex';

/**
 * The `nodes` table: one row per bare-metal node, with the Ironic fields attestation drivers read
 * (`driver_info`, `instance_info`) and the orchestrator's provision state. Released: never edit this
 * file; add a new migration instead.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('nodes', (table) => {
    table.uuid('uuid').primary();
    table.string('name', 255).nullable().unique();
    table.string('provision_state', 64).notNullable().defaultTo('enroll');
    table.jsonb('driver_info').notNullable().defaultTo('{}');
    table.jsonb('instance_info').notNullable().defaultTo('{}');
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.index(['provision_state']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('nodes');
}
