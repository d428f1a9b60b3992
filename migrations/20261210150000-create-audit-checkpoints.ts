import type { Knex } from 'knex';

/**
 * The signed checkpoints of the verifier's audit log (`AuditPruner`): each stands for a run of a
 * stream's records that retention deleted, `from_seq` to `to_seq`, binding the hash the run linked from
 * (`prev_hash`, the record before it) to the hash of its last record (`hash`), so the records kept
 * around it still verify as one chain. The broker's log is never pruned and has none.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_checkpoints', (table) => {
    table.string('stream', 255).notNullable();
    table.bigInteger('from_seq').notNullable();
    table.bigInteger('to_seq').notNullable();
    table.string('prev_hash', 64).notNullable();
    table.string('hash', 64).notNullable();
    table.text('at').notNullable();
    table.text('signature').notNullable();
    // An export reads them in the order of the record each one comes before (stream, to_seq + 1).
    table.primary(['stream', 'to_seq']);
    table.unique(['stream', 'from_seq']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_checkpoints');
}
