import type { Knex } from 'knex';

/**
 * Two partial indexes of the admin records of successful changes (status 2xx; `details` starting
 * `{"params":{…},"status":2xx`, as `adminAuditEvent` writes it), newest first, so that a node page
 * reads its node's and its policies' real changes apart from refused requests, which any operator
 * token can send as many of as it likes (`test/dashboard/node-timeline-refusal-flood.test.ts`):
 *
 * - `audit_records_fleet_policy_changes_idx`: the `fleet` stream's by the policy name their request
 *   named, the expression of `audit_records_fleet_policy_idx` (`20261211170100-audit-fleet-policy-index`).
 * - `audit_records_changes_idx` (stream, at): a node's stream's, verdicts left out.
 *
 * Only params without escapes match (a successful request's are validated names and ids): a refused
 * request's path cannot write `"status":2…` after them. The dashboard's queries repeat the expressions
 * exactly (`FLEET_POLICY_NAME_SQL`, `SUCCESSFUL_CHANGE_SQL`, lib/dashboard/node-timeline.ts).
 * Built in the migration's transaction, as `20261211160000-dashboard-read-indexes` (why not
 * `concurrently`: there).
 */
const SUCCESSFUL_CHANGE = String.raw`details ~ '^\{"params":\{("[A-Za-z0-9_]+":"[^"\\]*"(,"[A-Za-z0-9_]+":"[^"\\]*")*){0,1}\},"status":2[0-9]{2}[,}]'`;
const POLICY_NAME = String.raw`substring(details from '^\{"params":\{"name":"([A-Za-z0-9_.:@+-]{1,255})"[,}]')`;
const INDEXES = [
  ['audit_records_fleet_policy_changes_idx', `(${POLICY_NAME}, at) where stream = 'fleet' and ${SUCCESSFUL_CHANGE}`],
  ['audit_records_changes_idx', `(stream, at) where action <> 'verdict' and ${SUCCESSFUL_CHANGE}`],
] as const;

export async function up(knex: Knex): Promise<void> {
  for (const [name, definition] of INDEXES) {
    await knex.raw(`create index if not exists ?? on audit_records ${definition}`, [name]);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [name] of INDEXES) await knex.raw('drop index if exists ??', [name]);
}
