import type { Knex } from 'knex';

/**
 * The node change the Ironic attestation interface spec asks for: a nullable `attestation_interface`
 * (null = the configured default) and the last attestation result (status, reason, Keylime event
 * ids, time). Released: never edit this file; add a new migration instead.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('nodes', (table) => {
    table.string('attestation_interface', 255).nullable().defaultTo(null);
    table.string('last_attestation_status', 16).nullable().defaultTo(null);
    table.text('last_attestation_reason').nullable().defaultTo(null);
    table.jsonb('last_attestation_event_ids').notNullable().defaultTo('[]');
    table.timestamp('last_attestation_at', { useTz: true }).nullable().defaultTo(null);
    table.check(
      "last_attestation_status is null or last_attestation_status in ('passed', 'failed', 'unavailable')",
      [],
      'nodes_last_attestation_status_check',
    );
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('nodes', (table) => {
    table.dropChecks('nodes_last_attestation_status_check');
    table.dropColumns(
      'attestation_interface',
      'last_attestation_status',
      'last_attestation_reason',
      'last_attestation_event_ids',
      'last_attestation_at',
    );
  });
}
