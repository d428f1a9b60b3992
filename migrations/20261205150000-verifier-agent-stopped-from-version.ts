import type { Knex } from 'knex';
import { createAgentContentVersionTrigger } from './20261204180000-verifier-agent-content-version.js';

/**
 * `verifier_agents.stopped_from_version`: the row version (`content_version`) an operator's stop or
 * delete (TENANT_FAILED, TERMINATED) changed the row from — a one-shot token. A verdict failing the
 * agent that was decided from exactly that version is recorded over the stop once, consuming the token
 * in the same statement (lib/verifier/save-rounds.ts); any other FAIL meeting the stop is not. The
 * column is not versioned (`UNVERSIONED_AGENT_COLUMNS`): consuming the token changes nothing a verdict
 * is judged against, so it must not read as an operator's change. The version trigger is re-created so
 * that it leaves the new column out.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table verifier_agents add column stopped_from_version bigint');
  await createAgentContentVersionTrigger(knex);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger if exists verifier_agent_content_version on verifier_agents');
  await knex.raw('alter table verifier_agents drop column stopped_from_version');
  await createAgentContentVersionTrigger(knex);
}
