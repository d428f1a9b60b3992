import type { Knex } from 'knex';

/**
 * The columns whose change does not move an agent's version: its lease, the version itself, and the
 * stop's one-shot token (`stopped_from_version`, added by 20261205150000, which re-creates the trigger
 * from this list; absent before it, where leaving it out changes nothing).
 */
export const UNVERSIONED_AGENT_COLUMNS: readonly string[] = ['owner', 'lease_expires_at', 'content_version', 'stopped_from_version'];

/**
 * `verifier_agents.content_version`: the agent row's version (`lib/verifier/agent-row-version.ts`),
 * until now an md5 of the whole row minus its lease, which PostgreSQL computed on every pull write
 * (twice: the expected version and the one returned), detoasting the row's certificate and keys each
 * time. A BEFORE UPDATE trigger takes a new number from one sequence whenever an update sets any
 * column but the lease's; numbers are never reused, so an agent deleted and enrolled again never gets
 * a version its old row had. The trigger names its columns (`UPDATE OF`), listed here from the table
 * as it is: a later migration that adds a column to `verifier_agents` must run
 * `createAgentContentVersionTrigger` again (test/verifier/agent-content-version.test.ts checks), and
 * one that drops a column must drop the trigger first (PostgreSQL refuses otherwise) and re-create it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('create sequence verifier_agent_content_version_seq');
  await knex.raw("alter table verifier_agents add column content_version bigint not null default nextval('verifier_agent_content_version_seq')");
  await knex.raw(`create function verifier_agent_content_changed() returns trigger language plpgsql as $$
    begin
      new.content_version := nextval('verifier_agent_content_version_seq');
      return new;
    end $$`);
  await createAgentContentVersionTrigger(knex);
}

/** (Re)creates the trigger over every column of `verifier_agents` but `UNVERSIONED_AGENT_COLUMNS`. */
export async function createAgentContentVersionTrigger(knex: Knex): Promise<void> {
  const columns = (await knex('information_schema.columns')
    .select('column_name')
    .where({ table_name: 'verifier_agents' })
    .andWhere('table_schema', knex.raw('current_schema()'))
    .orderBy('ordinal_position')) as { column_name: string }[];
  const versioned = columns.map((c) => c.column_name).filter((name) => !UNVERSIONED_AGENT_COLUMNS.includes(name));
  await knex.raw('drop trigger if exists verifier_agent_content_version on verifier_agents');
  await knex.raw(
    `create trigger verifier_agent_content_version before update of ${versioned.map(() => '??').join(', ')} on verifier_agents
     for each row execute function verifier_agent_content_changed()`,
    versioned,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger if exists verifier_agent_content_version on verifier_agents');
  await knex.raw('drop function if exists verifier_agent_content_changed()');
  await knex.raw('alter table verifier_agents drop column content_version');
  await knex.raw('drop sequence if exists verifier_agent_content_version_seq');
}
