import type { Knex } from 'knex';

/**
 * Named policies belong to a tenant, as agents do (20261203120000): a bearer token of tenant A
 * sees, changes and enrols with only tenant A's runtime and measured-boot policies, so another
 * tenant can neither read nor loosen the policy A's agents are attested with. Names stay unique
 * across tenants (the primary key, which agents' foreign keys and the verifier's caches use).
 * Policies stored before tenants owned them, or with a client certificate, are in `default`.
 */
export async function up(knex: Knex): Promise<void> {
  for (const table of POLICY_TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.string('tenant', 128).notNullable().defaultTo('default');
      t.index(['tenant', 'name'], `${table}_tenant_idx`);
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of POLICY_TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.dropIndex(['tenant', 'name'], `${table}_tenant_idx`);
      t.dropColumn('tenant');
    });
  }
}

const POLICY_TABLES = ['verifier_runtime_policies', 'verifier_mb_policies'] as const;
