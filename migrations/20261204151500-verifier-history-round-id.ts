import type { Knex } from 'knex';

/**
 * `verifier_attestation_history.round_id`: a random id the pull loop gives every verdict before its
 * first write. After a write whose COMMIT got no answer the loop asks whether the history holds that
 * id, so a verdict that carries no quote nonce (an internal error, an unreachable agent's FAIL) is not
 * stored twice. Rows written before this migration, and push verdicts, keep null.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.string('round_id', 32).nullable();
    table.index(['agent_id', 'round_id'], 'verifier_history_round_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_attestation_history', (table) => {
    table.dropIndex(['agent_id', 'round_id'], 'verifier_history_round_idx');
    table.dropColumn('round_id');
  });
}
