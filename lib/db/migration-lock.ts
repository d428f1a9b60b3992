import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import { DatabaseUnavailable, IronlimeError } from '../../interfaces/errors.js';
import { ConcurrencyLimiter } from '../timing/concurrency-limiter.js';
import { pollUntil } from '../timing/poll-until.js';

/**
 * The first key of the migration lock, `pg_try_advisory_xact_lock(MIGRATION_LOCK_CLASS,
 * hashtext(current_schema()))`: "irlm" in ASCII, beside the verifier process locks' "irlv". The
 * second key is the schema's, so deployments (and tests) in different schemas of one database do not
 * wait for each other; knex's bookkeeping tables are per schema too.
 */
export const MIGRATION_LOCK_CLASS = 0x69726c6d;

/**
 * How long a start waits for another process's migrations before it fails: long enough for an upgrade
 * of a large history (a batch of its fill takes seconds), short enough that a start stuck behind a
 * session that never ends says so.
 */
export const DEFAULT_MIGRATION_LOCK_WAIT_MS = 10 * 60_000;

const KEY_SQL = `hashtext(coalesce(current_schema(), ''))`;

/** Between attempts to take the lock. */
const POLL_MS = 250;

/**
 * The start of `application_name` on every connection a migrator uses while it holds the lock,
 * followed by the schema's key: another process tells from `pg_stat_activity` whether a migrator of
 * this schema is still alive, even one whose lock session has ended.
 */
export const MIGRATING_APPLICATION_PREFIX = 'ironlime migrating ';

/** How long the check that the lock is still held waits for its session's reply. */
const HELD_CHECK_MS = 30_000;

/** What `work` gets while it holds the migration lock. */
export interface HeldMigrationLock {
  /**
   * The knex to migrate with. On PostgreSQL a pool of its own whose sessions carry `applicationName`,
   * ended before the lock is released; on PGlite the caller's knex.
   */
  readonly migrator: Knex;
  /** The `application_name` of this schema's migrators (PostgreSQL), absent on PGlite. */
  readonly applicationName?: string;
  /**
   * Resolves while the lock is still held; rejects with `DatabaseUnavailable` once its session has
   * ended (then another process may take it), so the caller stops before its next change.
   */
  assertHeld(): Promise<void>;
}

/** Callers of `withMigrationLock` in this process, per knex instance: one at a time, in the order they called. */
const turns = new WeakMap<Knex, ConcurrencyLimiter>();

/**
 * Runs `work` (migrations, or knex's bookkeeping) while no other ironlime process migrates the same
 * schema, so services started together wait for each other instead of failing on knex's lock row or
 * on its unguarded creation of its bookkeeping tables.
 *
 * On PostgreSQL the lock is a transaction-scoped advisory lock, held by a transaction left open on a
 * connection of its own, outside knex's pool, while `work` runs on a pool of its own (`held.migrator`,
 * sessions named `held.applicationName`). It ends with that session: PostgreSQL releases it when the
 * process dies (SIGKILL, crash), when the connection drops, or when the transaction ends;
 * transaction-scoped, it also holds through a pooler in transaction mode, which keeps a transaction
 * on one server session. The lock's session can end while the process lives (an idle-in-transaction
 * reaper, a reset of that one connection): `held.assertHeld` then fails, so the caller stops before
 * its next change, and a lost lock fails the commit, so the caller learns that another process may
 * have migrated alongside. Callers in one process on one knex also take turns here, so they do not
 * each hold a connection while waiting. PGlite is one process with one session (its folder lock,
 * `pglite-folder-lock.ts`): the turns alone exclude.
 *
 * @throws DatabaseUnavailable when the lock stays held for `waitMs`, naming the session that holds it,
 *   when the session waiting for it ends, or when the lock's session ended while `work` ran.
 */
export async function withMigrationLock<T>(
  knex: Knex,
  work: (held: HeldMigrationLock) => Promise<T>,
  waitMs: number = DEFAULT_MIGRATION_LOCK_WAIT_MS,
): Promise<T> {
  let mine = turns.get(knex);
  if (mine === undefined) {
    mine = new ConcurrencyLimiter(1);
    turns.set(knex, mine);
  }
  return mine.run(() => (knex.client instanceof ClientPgLite ? work({ migrator: knex, assertHeld: () => Promise.resolve() }) : underAdvisoryLock(knex, work, waitMs)));
}

interface QueryResult {
  readonly rows: Record<string, unknown>[];
}

/** The calls of a raw node-postgres connection this file makes (queries in the callback form: `postgres-bounds.ts` wraps that one). */
interface RawConnection {
  query(config: { text: string; values?: readonly unknown[] }, callback: (error: Error | null, result?: QueryResult) => void): unknown;
  once(event: 'error' | 'end', listener: () => void): unknown;
}

function run(connection: RawConnection, text: string, values?: readonly unknown[]): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    connection.query({ text, ...(values === undefined ? {} : { values }) }, (error, result) => (error === null ? resolve(result ?? { rows: [] }) : reject(error)));
  });
}

/** Opens a connection outside knex's pool (knex's own way, with its search path), closed by `close`. */
async function lockConnection(knex: Knex): Promise<{ connection: RawConnection; close: () => Promise<void> }> {
  const client = knex.client as { acquireRawConnection(): Promise<RawConnection>; destroyRawConnection(connection: RawConnection): Promise<void> };
  const connection = await client.acquireRawConnection();
  return { connection, close: () => client.destroyRawConnection(connection).catch(() => undefined) };
}

async function underAdvisoryLock<T>(knex: Knex, work: (held: HeldMigrationLock) => Promise<T>, waitMs: number): Promise<T> {
  // The lock's session is not one of the pool's: `work` may need every pooled connection (a pool of
  // one, as some callers configure, would otherwise wait for itself).
  const { connection, close } = await lockConnection(knex);
  let ended = false;
  connection.once('error', () => (ended = true));
  connection.once('end', () => (ended = true));
  try {
    const key = await takeLock(connection, waitMs);
    const applicationName = `${MIGRATING_APPLICATION_PREFIX}${key}`;
    const assertHeld = async (): Promise<void> => {
      const alive = !ended && (await answers(connection));
      if (!alive) {
        throw new DatabaseUnavailable(
          'the migration lock was lost while migrating (its session ended): stopped before the next migration so that no other process migrates alongside; ' +
            'the next start resumes the migrations',
        );
      }
    };
    const migrator = taggedKnex(knex, applicationName);
    let result: T;
    try {
      result = await work({ migrator, applicationName, assertHeld });
    } finally {
      // Its sessions end before the lock does: another start waits for them (`pg_stat_activity`).
      await migrator.destroy();
    }
    try {
      await run(connection, 'commit');
    } catch (error) {
      throw new DatabaseUnavailable(
        'the migration lock was lost while migrating (its session ended), so another process may have migrated alongside; ' +
          'the migrations are complete or resume at the next start',
        { cause: error },
      );
    }
    return result;
  } finally {
    // Ending the session also ends an open transaction, and with it the lock.
    await close();
  }
}

/** Waits for the lock on `connection` (in a transaction left open); resolves to the schema's key. */
async function takeLock(connection: RawConnection, waitMs: number): Promise<number> {
  try {
    await run(connection, 'begin');
    // The transaction stays idle while `work` runs elsewhere: a server-side idle bound would end it.
    await run(connection, 'set local idle_in_transaction_session_timeout = 0');
    let key: number | undefined;
    await pollUntil({ timeoutMs: waitMs, intervalMs: POLL_MS }, 'migration lock', async () => {
      // No bind parameter: an extended-protocol query leaves its portal, and with it a snapshot, open in
      // the idle transaction for as long as the wait lasts, and a `create index concurrently` anywhere in
      // the database waits for that snapshot (a migration building one then waited for its own waiters).
      const result = await run(connection, `select pg_try_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, ${KEY_SQL}) as locked, ${KEY_SQL} as key`);
      key = result.rows[0]?.['key'] as number | undefined;
      return result.rows[0]?.['locked'] === true;
    });
    return key as number;
  } catch (error) {
    if (error instanceof IronlimeError && error.code === 'ERR_TIMEOUT') throw new DatabaseUnavailable(await heldBy(connection, waitMs), { cause: error });
    if (error instanceof IronlimeError) throw error;
    throw new DatabaseUnavailable(
      `the session waiting for the migration lock ended before it got the lock (${error instanceof Error ? error.message : String(error)}); nothing was migrated`,
      { cause: error },
    );
  }
}

/** Whether the lock's session still answers, within `HELD_CHECK_MS`. */
async function answers(connection: RawConnection): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, HELD_CHECK_MS, false);
  });
  try {
    return await Promise.race([run(connection, 'select 1').then(() => true, () => false), silent]);
  } finally {
    clearTimeout(timer);
  }
}

type AfterCreate = (connection: RawConnection, done: (error: Error | null, connection: RawConnection) => void) => void;

/**
 * A knex with the caller's settings (pool validation, statement bounds, search path) whose every
 * session is named `applicationName` before first use. Its pool keeps no idle sessions.
 */
function taggedKnex(knex: Knex, applicationName: string): Knex {
  const config = knex.client.config as Knex.Config;
  const pool = config.pool ?? {};
  const afterCreate = pool.afterCreate as AfterCreate | undefined;
  const named: AfterCreate = (connection, done) => {
    run(connection, `select set_config('application_name', $1, false)`, [applicationName]).then(
      () => (afterCreate === undefined ? done(null, connection) : afterCreate(connection, done)),
      (error: Error) => done(error, connection),
    );
  };
  return knexFactory({ ...config, pool: { ...pool, min: 0, afterCreate: named } });
}

/** Says who holds the lock: the error of a start that gave up waiting. */
async function heldBy(connection: RawConnection, waitMs: number): Promise<string> {
  const result = (await run(
    connection,
    `select current_schema() as schema, a.pid, a.application_name, host(a.client_addr) as client, a.xact_start
       from (select 1) as here
       left join (pg_locks l join pg_stat_activity a on a.pid = l.pid)
         on l.locktype = 'advisory' and l.granted and l.classid = $1::oid and l.objid = (${KEY_SQL})::oid and l.objsubid = 2
        and l.database = (select oid from pg_database where datname = current_database())`,
    [MIGRATION_LOCK_CLASS],
  )) as unknown as { rows: { schema: string | null; pid: number | null; application_name: string | null; client: string | null; xact_start: Date | null }[] };
  const holder = result.rows[0];
  const who =
    holder?.pid === null || holder?.pid === undefined
      ? 'a session gone since'
      : `session pid ${holder.pid} (application "${holder.application_name ?? ''}", client ${holder.client ?? 'local socket'}, in its transaction since ${holder.xact_start?.toISOString() ?? 'unknown'})`;
  return (
    `schema "${holder?.schema ?? 'unknown'}" is being migrated by another process: waited ${waitMs} ms for its migration lock, held by ${who}; ` +
    'a long migration may still be running there, or that session hangs (ending it releases the lock)'
  );
}
