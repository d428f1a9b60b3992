import type { Knex } from 'knex';

/**
 * Takes, until `trx` ends, the lock that serialises every enrolment of the id `agentId`, TPM
 * (`verifier_agents`) and liveness (`verifier_liveness`) alike: each checks the other table under it,
 * so two concurrent enrolments cannot put one id in both.
 */
export async function lockNodeId(trx: Knex.Transaction, agentId: string): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`verifier-node-id:${agentId}`]);
}
