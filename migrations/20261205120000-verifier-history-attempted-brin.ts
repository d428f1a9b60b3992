import type { Knex } from 'knex';

/**
 * A BRIN index on `verifier_attestation_history.attempted_at`, for the history retention
 * (`HistoryPruner`): rows are appended in time order, so block ranges summarise the column well, the
 * index stays a few pages for millions of rows, and building it on a large table is one quick scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index if not exists verifier_history_attempted_brin on verifier_attestation_history using brin (attempted_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists verifier_history_attempted_brin');
}
