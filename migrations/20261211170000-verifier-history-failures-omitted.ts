import type { Knex } from 'knex';

/**
 * `verifier_attestation_history.failures_omitted` and `omitted_event_ids`: a round's row keeps its
 * first failures only (`MAX_STORED_FAILURES`, lib/attestation/stored-failures.ts), and these say how
 * many more the round had and their distinct event ids. Rows written before keep every failure: 0 and
 * `[]`. Constant defaults: PostgreSQL (11 and later) adds both without rewriting the table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.integer('failures_omitted').notNullable().defaultTo(0);
    table.jsonb('omitted_event_ids').notNullable().defaultTo(knex.raw(`'[]'::jsonb`));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.dropColumn('omitted_event_ids');
    table.dropColumn('failures_omitted');
  });
}
