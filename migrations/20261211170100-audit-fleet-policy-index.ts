import type { Knex } from 'knex';

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
 * Built in the migration's transaction, as `20261211160000-dashboard-read-indexes` (why not
 * `concurrently`: there).
 */
const NAME = 'audit_records_fleet_policy_idx';
const DEFINITION = String.raw`(substring(details from '^\{"params":\{"name":"([A-Za-z0-9_.:@+-]{1,255})"[,}]'), at) where stream = 'fleet'`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create index if not exists ?? on audit_records ${DEFINITION}`, [NAME]);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists ??', [NAME]);
}
