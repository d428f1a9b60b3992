import type { Knex } from 'knex';

/**
 * The KBS resource broker's tables (docs/broker.md). Nodes are what an operator told the broker about a
 * machine (its AK and the policies its evidence must meet, the groups it belongs to); resources are
 * secrets stored AES-256-GCM-encrypted under the broker's master key, never in clear; sessions carry
 * the RCAR handshake between `/auth` and `/attest`; revocations withdraw a node's access at once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('broker_nodes', (table) => {
    table.string('agent_id', 80).primary();
    // base64 TPM2B_PUBLIC of the node's AK, as the registrar stores it; null: the node may only present tokens.
    table.text('ak_tpm').nullable();
    // Keylime tpm_policy JSON text.
    table.text('tpm_policy').notNullable();
    table.text('runtime_policy').nullable();
    table.text('mb_refstate').nullable();
    // JSON array of group names.
    table.text('groups').notNullable();
    table.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('broker_resources', (table) => {
    table.string('repository', 128).notNullable();
    table.string('type', 128).notNullable();
    table.string('tag', 128).notNullable();
    // base64 of IV(12) ‖ AES-256-GCM ciphertext ‖ tag(16), AAD = the resource path.
    table.text('sealed').notNullable();
    // JSON resource policy: {agents, groups, allow_tokens}.
    table.text('policy').notNullable();
    table.bigInteger('updated_at').notNullable();
    table.primary(['repository', 'type', 'tag']);
  });
  await knex.schema.createTable('broker_sessions', (table) => {
    table.string('id', 64).primary();
    table.string('nonce', 64).notNullable();
    table.string('tee', 32).notNullable();
    // Unix milliseconds.
    table.bigInteger('expires_at').notNullable().index();
    // Set by a passing /attest: the node, its tee-pubkey (JWK JSON) and the attestation time.
    table.string('agent_id', 80).nullable();
    table.text('tee_pubkey').nullable();
    table.bigInteger('attested_at').nullable();
  });
  await knex.schema.createTable('broker_revocations', (table) => {
    table.string('agent_id', 80).primary();
    // Unix seconds; tokens issued at or before it and sessions attested before it are refused.
    table.bigInteger('revoked_at').notNullable();
    table.text('reason').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('broker_revocations');
  await knex.schema.dropTable('broker_sessions');
  await knex.schema.dropTable('broker_resources');
  await knex.schema.dropTable('broker_nodes');
}
