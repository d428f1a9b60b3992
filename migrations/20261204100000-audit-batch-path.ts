import type { Knex } from 'knex';

/**
 * The verifier signs a batch of audit records with one signature over a hash tree of their hashes
 * (lib/audit/audit-batch-signature.ts); each record keeps its path to the signed root as JSON text.
 * Records signed alone, and every record written before, have the empty path.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_records', (table) => {
    table.text('batch_path').notNullable().defaultTo('[]');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_records', (table) => {
    table.dropColumn('batch_path');
  });
}
