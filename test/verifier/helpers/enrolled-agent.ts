import type { Knex } from 'knex';
import type { EnrolledAgent } from '../../../lib/verifier/push/push-boot-log-store.js';

/** The agent's id and its current enrolment as stored now (`verifier_agents.enrolment`). */
export async function enrolledAgent(knex: Knex, agentId: string): Promise<EnrolledAgent> {
  const row = (await knex('verifier_agents').where({ agent_id: agentId }).first(knex.raw('enrolment::text as enrolment'))) as { enrolment: string };
  return { agentId, enrolment: row.enrolment };
}
