import type { Knex } from 'knex';
import { createAgentContentVersionTrigger } from './20261204180000-verifier-agent-content-version.js';

const BOOT_LOGS = 'verifier_push_boot_logs';

/**
 * The enrolment in the stored boot log's order (docs/push.md "Eleventh pass: the enrolment in the boot
 * log's order"). `verifier_agents.enrolment`: a number taken from a sequence when the agent's row is
 * inserted, never updated, never reused — an agent deleted and enrolled again gets a higher one. Not
 * `created_at`: a clock can step back (NTP, a restored VM, a failover to another host), and the time
 * reaches this process as a millisecond `Date`. `verifier_push_boot_logs.enrolment`: the enrolment the
 * row was written for; a write replaces a row of an older enrolment whatever its index, never one of a
 * newer, and within one enrolment the index rule of 20261205030000 holds. Rows stored before take
 * their agent's current enrolment (the foreign key deletes them with the agent). A row inserted without
 * an enrolment — by a verifier process from before this migration, during a rolling upgrade — takes
 * its agent's current one (`OLD_PROCESS_ENROLMENT`).
 */
/**
 * A BEFORE INSERT trigger: an insert that names no enrolment (an older process's tombstone, in its
 * failing verdict's transaction, or its write of a log) gets the agent's current enrolment. Row
 * triggers fire before the NOT NULL check; without this, every such insert fails there, before its
 * ON CONFLICT, so an older process could store no push failure at all (its retrier loops and the
 * agent keeps its PASS). Not a default of 0: an older process's row would then read as another
 * enrolment's and every newer enrolment's write would replace its tombstone. Its search path is the
 * migration's, so `verifier_agents` is this schema's table whatever path the inserting session has.
 */
const OLD_PROCESS_ENROLMENT = `create function verifier_push_boot_log_enrolment() returns trigger language plpgsql set search_path from current as $$
    begin
      if new.enrolment is null then
        new.enrolment := (select a.enrolment from verifier_agents a where a.agent_id = new.agent_id);
      end if;
      return new;
    end $$`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw('create sequence verifier_agent_enrolment_seq');
  // A volatile default: every existing row gets its own number.
  await knex.raw("alter table verifier_agents add column enrolment bigint not null default nextval('verifier_agent_enrolment_seq')");
  // The content-version trigger names every column (its migration says why).
  await createAgentContentVersionTrigger(knex);
  await knex.raw(`alter table ${BOOT_LOGS} add column enrolment bigint`);
  await knex.raw(`update ${BOOT_LOGS} b set enrolment = a.enrolment from verifier_agents a where a.agent_id = b.agent_id`);
  await knex.raw(`alter table ${BOOT_LOGS} alter column enrolment set not null`);
  await knex.raw(OLD_PROCESS_ENROLMENT);
  await knex.raw(`create trigger verifier_push_boot_log_enrolment before insert on ${BOOT_LOGS} for each row execute function verifier_push_boot_log_enrolment()`);
}

export async function down(knex: Knex): Promise<void> {
  // Without the column, a row of an older enrolment would read as the current one's.
  await knex.raw(`drop trigger if exists verifier_push_boot_log_enrolment on ${BOOT_LOGS}`);
  await knex.raw('drop function verifier_push_boot_log_enrolment()');
  await knex.raw(`delete from ${BOOT_LOGS} b using verifier_agents a where a.agent_id = b.agent_id and a.enrolment <> b.enrolment`);
  await knex.raw(`alter table ${BOOT_LOGS} drop column enrolment`);
  // PostgreSQL refuses to drop a column the trigger names.
  await knex.raw('drop trigger if exists verifier_agent_content_version on verifier_agents');
  await knex.raw('alter table verifier_agents drop column enrolment');
  await createAgentContentVersionTrigger(knex);
  await knex.raw('drop sequence verifier_agent_enrolment_seq');
}
