import type { Knex } from 'knex';

/**
 * Revoked API tokens (`DELETE /v2.x/tokens/{jti}`): a token whose `jti` is here is refused before its
 * expiry. A row is kept until the longest lifetime a token can have has passed (`expires_at`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_token_revocations', (table) => {
    table.text('jti').primary();
    table.text('revoked_by').notNullable();
    table.timestamp('revoked_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_token_revocations');
}
