import type { Knex } from 'knex';

/**
 * Verifier scale-out (issue 10, item 5): each verifier process writes a heartbeat row here on every
 * lease sweep. The processes of one `verifier_id` whose heartbeat is younger than a lease are the
 * live ones, and each claims at most its fair share of that verifier's agents (and lets go of what it
 * holds above it), so K processes split the agents through the existing leases without a flag.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_processes', (table) => {
    table.string('owner', 255).primary();
    table.string('verifier_id', 255).notNullable();
    table.timestamp('heartbeat_at', { useTz: true }).notNullable();
    table.index(['verifier_id', 'heartbeat_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_processes');
}
