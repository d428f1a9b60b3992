import type { Knex } from 'knex';

/** The trust levels an enrolment's `metadata.trust_level` may carry (lib/identity/trust-level.ts). */
const LEVELS = new Set(['hardware-tpm', 'emulated-tpm', 'id-secret', 'id-only']);

/**
 * The dashboard counts, sorts and shows agents by trust level (docs/dashboard.md). The keylime driver
 * puts the registrar's level in the enrolment's `metadata`; it is copied to `verifier_agents.trust_level`
 * when stored (null: none or not a known level, shown as `unknown`), so no query has to cast the
 * free-form metadata text to JSON (PostgreSQL refuses some texts JSON.parse accepts, e.g. `\u0000`).
 * Existing rows are filled here, parsed in this process for the same reason.
 *
 * Liveness-checked nodes get a tenant like the other agents: a token of tenant A reads and changes
 * only tenant A's (lib/verifier/verifier-access.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.string('trust_level', 16).nullable();
  });
  const rows = (await knex('verifier_agents').select('agent_id', 'meta_data').where('meta_data', 'like', '%trust_level%')) as { agent_id: string; meta_data: string }[];
  for (const row of rows) {
    const level = levelOf(row.meta_data);
    if (level !== null) await knex('verifier_agents').update({ trust_level: level }).where({ agent_id: row.agent_id });
  }
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.string('tenant', 128).notNullable().defaultTo('default');
    table.index(['tenant', 'agent_id'], 'verifier_liveness_tenant_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.dropIndex(['tenant', 'agent_id'], 'verifier_liveness_tenant_idx');
    table.dropColumn('tenant');
  });
  await knex.schema.alterTable('verifier_agents', (table) => {
    table.dropColumn('trust_level');
  });
}

function levelOf(metaData: string): string | null {
  try {
    const level = (JSON.parse(metaData) as Record<string, unknown> | null)?.['trust_level'];
    return typeof level === 'string' && LEVELS.has(level) ? level : null;
  } catch {
    return null;
  }
}
