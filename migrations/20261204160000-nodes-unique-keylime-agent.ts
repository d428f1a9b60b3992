import type { Knex } from 'knex';

/** The index's name: `NodeStore` recognises its unique violation by it. */
const INDEX = 'nodes_keylime_agent_uuid_unique';

/**
 * At most one node's `driver_info` names a given `keylime_agent_uuid`. The keylime driver checked this
 * before storing a location (`nodesNamingAgent`), but two nodes located at the same moment could both
 * pass that check; the unique index makes the second write fail instead. Nodes without the field are
 * not indexed.
 *
 * A database where two nodes already name one agent cannot get the index: the migration stops and
 * names them, and nothing changes until an operator clears the field on all but one of each (the
 * driver refused to attest such nodes anyway). Picking a winner here would hand the agent to a node
 * nobody chose.
 */
export async function up(knex: Knex): Promise<void> {
  const shared = (await knex('nodes')
    .select(knex.raw("driver_info->>'keylime_agent_uuid' as agent"), knex.raw("string_agg(uuid::text, ', ' order by created_at, uuid) as nodes"))
    .whereRaw("driver_info->>'keylime_agent_uuid' is not null")
    .groupByRaw("driver_info->>'keylime_agent_uuid'")
    .havingRaw('count(*) > 1')
    .orderBy('agent')) as { agent: string; nodes: string }[];
  if (shared.length > 0) {
    const list = shared.map((row) => `agent ${row.agent}: nodes ${row.nodes}`).join('; ');
    throw new Error(`nodes share a keylime_agent_uuid in driver_info (${list}): clear it on all but one node of each agent, then migrate again`);
  }
  await knex.raw(`CREATE UNIQUE INDEX ${INDEX} ON nodes ((driver_info->>'keylime_agent_uuid')) WHERE driver_info->>'keylime_agent_uuid' IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX IF EXISTS ${INDEX}`);
}
