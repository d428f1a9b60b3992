import type { Knex } from 'knex';

/**
 * Which enrolment of a liveness-checked node a row holds: a fresh uuid at every (re-)enrolment. A
 * check's observation is stored only while the row still holds the enrolment it was made for, so a
 * check of an old address, certificate or proof key never decides the state of a new one
 * (`LivenessRepository.saveState`). Rows enrolled before get a uuid each from the column's default.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.text('enrolment').notNullable().defaultTo(knex.raw('gen_random_uuid()::text'));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('verifier_liveness', (table) => {
    table.dropColumn('enrolment');
  });
}
