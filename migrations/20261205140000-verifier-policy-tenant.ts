import type { Knex } from 'knex';

/**
 * Named policies belong to a tenant, as agents do (20261203120000): a bearer token of tenant A
 * sees, changes and enrols with only tenant A's runtime and measured-boot policies, so another
 * tenant can neither read nor loosen the policy A's agents are attested with. Names stay unique
 * across tenants (the primary key, which agents' foreign keys and the verifier's caches use).
 *
 * Existing rows: a policy whose agents (pull and push alike: both are `verifier_agents` rows naming
 * it in `runtime_policy_name` / `mb_policy_name`) all belong to one tenant becomes that tenant's, so
 * no other tenant's token can change it; a policy used by agents of several tenants, or by none,
 * stays `default`'s (docs/dashboard.md gives the query that lists the shared ones). Migrations
 * print nothing, hence the query rather than a warning.
 */
export async function up(knex: Knex): Promise<void> {
  for (const [table, agentColumn] of POLICY_TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.string('tenant', 128).notNullable().defaultTo('default');
      t.index(['tenant', 'name'], `${table}_tenant_idx`);
    });
    await knex.raw(
      `update ?? as p set tenant = users.tenant
         from (select ?? as name, min(tenant) as tenant from verifier_agents
                where ?? is not null group by ?? having count(distinct tenant) = 1) as users
        where p.name = users.name`,
      [table, agentColumn, agentColumn, agentColumn],
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const [table] of POLICY_TABLES) {
    await knex.schema.alterTable(table, (t) => {
      t.dropIndex(['tenant', 'name'], `${table}_tenant_idx`);
      t.dropColumn('tenant');
    });
  }
}

const POLICY_TABLES = [
  ['verifier_runtime_policies', 'runtime_policy_name'],
  ['verifier_mb_policies', 'mb_policy_name'],
] as const;
