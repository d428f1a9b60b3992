import type { Knex } from 'knex';

/**
 * Deletes, once, each agent's push attestations past its newest 100 (`KEPT_ATTESTATIONS`,
 * lib/verifier/push/push-repository.ts). From then on phase 1 deletes only the one attestation falling
 * out (`index = n - 100`, an equality on the primary key), so rows stored before the pruning existed
 * would otherwise stay until the agent's deletion.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
delete from verifier_push_attestations old
using (select agent_id, max(index) as newest from verifier_push_attestations group by agent_id) m
where old.agent_id = m.agent_id and old.index <= m.newest - 100`);
}

export async function down(): Promise<void> {
  // The rows deleted are gone.
}
