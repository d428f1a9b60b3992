import type { Knex } from 'knex';
import { agentVersionSql } from '../../../lib/verifier/agent-row-version.js';

/** The version (`agentVersionSql`) of an agent's row as it is stored now. */
export async function agentRowVersion(knex: Knex, agentId: string): Promise<string> {
  const row = (await knex('verifier_agents as a').select(knex.raw(`${agentVersionSql('a')} as v`)).where({ agent_id: agentId }).first()) as { v: string };
  return row.v;
}
