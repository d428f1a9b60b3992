import type { Knex } from 'knex';
import { DatabaseUnavailable, IronlimeError } from '../../interfaces/errors.js';
import { pollUntil } from '../timing/poll-until.js';
import type { HeldMigrationLock } from './migration-lock.js';

/** The process warning's code when a start clears the knex lock of a migration that was cut off. */
export const MIGRATION_LOCK_CLEARED_WARNING = 'IRONLIME_MIGRATION_LOCK_CLEARED';

/** The trigger (and its function) that records who set knex's lock row. */
const SETTER_TRIGGER = 'ironlime_lock_row_setter';

/** Between looks at the lock row and at the sessions of its setter. */
const POLL_MS = 250;

interface LockRow {
  readonly is_locked: number;
  readonly locked_by_application: string | null;
  readonly locked_by_pid: number | null;
}

/**
 * Makes knex's lock table record the session that sets its row: a trigger writes that session's
 * `application_name` and pid beside `is_locked` whenever it goes to 1 (knex only ever updates the
 * row). Added once per schema, under the migration lock; `ensureTables` creates knex's bookkeeping
 * tables first when they are missing.
 */
export async function recordLockRowSetter(knex: Knex, lockTable: string, ensureTables: () => Promise<unknown>): Promise<void> {
  const present = (await knex.raw('select exists(select from pg_trigger where tgrelid = to_regclass(?) and tgname = ?) as present', [lockTable, SETTER_TRIGGER])) as {
    rows: { present: boolean }[];
  };
  if (present.rows[0]?.present === true) return;
  await ensureTables();
  await knex.raw('alter table ?? add column if not exists locked_by_application text, add column if not exists locked_by_pid integer', [lockTable]);
  await knex.raw(
    `create or replace function ${SETTER_TRIGGER}() returns trigger language plpgsql as $$
     begin
       new.locked_by_application := current_setting('application_name');
       new.locked_by_pid := pg_backend_pid();
       return new;
     end $$`,
  );
  await knex.raw(
    `create trigger ${SETTER_TRIGGER} before update of is_locked on ?? for each row
       when (new.is_locked = 1 and old.is_locked is distinct from 1) execute function ${SETTER_TRIGGER}()`,
    [lockTable],
  );
}

/**
 * Called under the migration lock, before knex takes its lock row. knex refuses to run while the row
 * is set ("Migration table is already locked"); a process killed while migrating leaves it set.
 *
 * On PGlite, which one process opens (its folder lock), a set row is such a leftover: it is cleared.
 * On PostgreSQL a set row is cleared only when a migrator of this version set it (its recorded
 * `application_name` is `held.applicationName`) and no session of that name is left in
 * `pg_stat_activity`: the setter's process is gone, or has stopped migrating. A migrator whose lock
 * session ended keeps its other sessions while it finishes its current migration; a migrator that takes
 * no migration lock (an older ironlime, another tool) leaves no such name. Either way the start
 * waits for the row to clear, up to `waitMs`.
 *
 * @throws DatabaseUnavailable when the row stays set for `waitMs`, naming its setter.
 */
export async function clearLeftoverLockRow(knex: Knex, lockTable: string, held: HeldMigrationLock, waitMs: number): Promise<void> {
  if (!(await knex.schema.hasTable(lockTable))) return;
  const { applicationName } = held;
  if (applicationName === undefined) {
    await clearLockRow(knex, lockTable);
    return;
  }
  let row: LockRow | undefined;
  let migrators: number[] = [];
  try {
    await pollUntil({ timeoutMs: waitMs, intervalMs: POLL_MS }, 'knex lock row', async () => {
      row = ((await knex(lockTable).select('is_locked', 'locked_by_application', 'locked_by_pid')) as LockRow[]).find((candidate) => candidate.is_locked === 1);
      if (row === undefined) return true;
      if (row.locked_by_application !== applicationName) return false;
      migrators = await sessionsNamed(knex, applicationName);
      if (migrators.length > 0) return false;
      await clearLockRow(knex, lockTable);
      return true;
    });
  } catch (error) {
    if (!(error instanceof IronlimeError && error.code === 'ERR_TIMEOUT') || row === undefined) throw error;
    throw new DatabaseUnavailable(await stillSet(knex, lockTable, row, migrators, waitMs), { cause: error });
  }
}

async function clearLockRow(knex: Knex, lockTable: string): Promise<void> {
  const cleared = await knex(lockTable).where({ is_locked: 1 }).update({ is_locked: 0 });
  if (cleared > 0) {
    process.emitWarning(`cleared ${lockTable}: a process stopped while migrating (killed or crashed); its migrations run again now`, {
      code: MIGRATION_LOCK_CLEARED_WARNING,
    });
  }
}

/** The pids of this database's sessions named `applicationName`. */
async function sessionsNamed(knex: Knex, applicationName: string): Promise<number[]> {
  const result = (await knex.raw('select pid from pg_stat_activity where datname = current_database() and application_name = ? order by pid', [applicationName])) as {
    rows: { pid: number }[];
  };
  return result.rows.map((session) => session.pid);
}

/** The error of a start that waited for the row in vain: who set it and what to do. */
async function stillSet(knex: Knex, lockTable: string, row: LockRow, migrators: number[], waitMs: number): Promise<string> {
  const schema = ((await knex.raw('select current_schema() as name')) as { rows: { name: string | null }[] }).rows[0]?.name ?? 'unknown';
  const waited = `knex's lock row ${schema}.${lockTable} stayed set for the ${waitMs} ms this start waited`;
  if (migrators.length > 0) {
    return `${waited}: the ironlime migrator that set it is still connected (session pid ${migrators.join(', ')}) and may still be migrating`;
  }
  const setter =
    row.locked_by_pid === null
      ? 'a session it did not record (set before this version recorded setters)'
      : `session pid ${row.locked_by_pid} (application "${row.locked_by_application ?? ''}")`;
  return (
    `${waited}: it was set by ${setter}, not by a migrator of this version, so it may still be migrating (an older ironlime, another tool); ` +
    `if nothing migrates this schema any more, clear it: update ${schema}.${lockTable} set is_locked = 0`
  );
}
