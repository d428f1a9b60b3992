import type { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';

/**
 * `audit_records_fleet_policy_idx`: the `fleet` stream's records by the policy name their request
 * named (`details` starting `{"params":{"name":"<name>"`, as `adminAuditEvent` writes it; null for
 * any other record), newest first. A node page shows its policies' changes, and found them by parsing
 * every record of the stream as JSON, which every refused admin request of an operator token grows
 * (200,000 records: 0.3 s a view). The expression is a regular expression's match on the text, which
 * cannot fail on any stored record (a `::jsonb` cast would fail every append of one it refuses), and
 * only names a policy may have (`PolicyNameParams`: JSON writes them as they are) match.
 * The dashboard's query repeats the expression exactly (`FLEET_POLICY_NAME_SQL`, lib/dashboard/node-timeline.ts).
 *
 * Built `concurrently` on PostgreSQL, outside a transaction, as `20261211160000-dashboard-read-indexes`,
 * and plainly on PGlite.
 */
export const config = { transaction: false };

const NAME = 'audit_records_fleet_policy_idx';
const DEFINITION = String.raw`(substring(details from '^\{"params":\{"name":"([A-Za-z0-9_.:@+-]{1,255})"[,}]'), at) where stream = 'fleet'`;

export async function up(knex: Knex): Promise<void> {
  const concurrently = knex.client instanceof ClientPgLite ? '' : 'concurrently';
  if (await isInvalid(knex)) await knex.raw(`drop index ${concurrently} if exists ??`, [NAME]);
  await knex.raw(`create index ${concurrently} if not exists ?? on audit_records ${DEFINITION}`, [NAME]);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists ??', [NAME]);
}

/** The index exists in this schema and an interrupted concurrent build left it invalid. */
async function isInvalid(knex: Knex): Promise<boolean> {
  const result = (await knex.raw(
    `select i.indisvalid as valid from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = ? and c.relnamespace = current_schema()::regnamespace`,
    [NAME],
  )) as { rows: { valid: boolean }[] };
  return result.rows[0]?.valid === false;
}
