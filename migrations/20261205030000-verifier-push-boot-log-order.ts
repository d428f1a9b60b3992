import type { Knex } from 'knex';

const BOOT_LOGS = 'verifier_push_boot_logs';
const LOG_COLUMNS = ['boot_time', 'hash_alg', 'mask', 'context_sha256', 'event_log'] as const;

/**
 * `verifier_push_boot_logs` in attestation order (docs/push.md "Tenth pass: the stored boot log's
 * order"): `attestation_index` is the agent's push attestation the row was written for, and a write
 * replaces only a row written for an older one. A failing verdict (evidence, silence, an exception)
 * leaves a tombstone — the log columns null, the index of the agent's latest attestation — instead
 * of deleting the row, so a pass's write still in flight cannot bring the log back after it. Rows
 * stored before carry -1: older than any attestation.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable(BOOT_LOGS, (table) => {
    table.integer('attestation_index').notNullable().defaultTo(-1);
    for (const column of LOG_COLUMNS) table.setNullable(column);
  });
  await knex.raw(`alter table ${BOOT_LOGS} alter column attestation_index drop default`);
  // A row is either a whole log or a tombstone, nothing in between.
  await knex.raw(`alter table ${BOOT_LOGS} add constraint ${BOOT_LOGS}_whole_or_tombstone check (
    num_nulls(${LOG_COLUMNS.join(', ')}) in (0, ${LOG_COLUMNS.length}))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter table ${BOOT_LOGS} drop constraint ${BOOT_LOGS}_whole_or_tombstone`);
  // A tombstone has no log to keep: without one, the agent is asked for its log, as after a delete.
  await knex(BOOT_LOGS).whereNull('event_log').delete();
  await knex.schema.alterTable(BOOT_LOGS, (table) => {
    table.dropColumn('attestation_index');
    for (const column of LOG_COLUMNS) table.dropNullable(column);
  });
}
