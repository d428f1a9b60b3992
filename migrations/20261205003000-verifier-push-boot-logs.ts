import type { Knex } from 'knex';

/**
 * `verifier_push_boot_logs`: per push agent, the boot log (`uefi_log`) of its current boot that a
 * passing attestation verified (docs/push.md "The boot log"), so that any verifier process on this
 * database can judge evidence asked without the log — not only the process that verified it. One row
 * per agent, replaced when a later boot's log passes; `context_sha256` is the SHA-256 of what it was
 * verified under (AK, refstate, measured-boot switches: `pushBootLogDigest`), with the quote's bank
 * and PCR mask beside it. A failing verdict deletes the row in its own transaction; deleting the agent
 * deletes it (the foreign key).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('verifier_push_boot_logs', (table) => {
    table.string('agent_id', 80).primary().references('agent_id').inTable('verifier_agents').onDelete('CASCADE');
    // Unix seconds of the agent's system_info.boot_time the log came with.
    table.bigInteger('boot_time').notNullable();
    table.string('hash_alg', 16).notNullable();
    // tpm_policy.mask in wire form (0x…), the quote's PCR selection.
    table.string('mask', 16).notNullable();
    table.string('context_sha256', 64).notNullable();
    // The verified log as the agent sent it (base64), at most MAX_REMEMBERED_LOG characters.
    table.text('event_log').notNullable();
    table.timestamp('verified_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('verifier_push_boot_logs');
}
