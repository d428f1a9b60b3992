import type { Knex } from 'knex';

/**
 * Appends `count` audit records to `stream` in one statement, from seq `from`, one a second ending
 * `endAgoSeconds` ago, naming `agentId` (a node's stream) or none (`fleet`). Hashes and signatures are
 * left empty: for tests of what the dashboard's reads touch, not of the chain.
 */
export async function appendBulkAuditRecords(
  knex: Knex,
  stream: string,
  agentId: string | null,
  from: number,
  count: number,
  endAgoSeconds: number,
  action: string,
  actor: string,
  details: string,
): Promise<void> {
  await knex.raw(
    `insert into audit_records (stream, seq, at, actor, action, agent_id, details, prev_hash, hash, signature)
     select ?, ?::bigint + g, to_char((now() - make_interval(secs => ?::int + ?::int - g)) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ?, ?, ?, ?, '', '', ''
       from generate_series(1, ?::int) as g`,
    [stream, from - 1, endAgoSeconds, count, actor, action, agentId, details, count],
  );
}
