import type { Knex } from 'knex';
import type { PgConnection } from '../../../lib/db/fixed-statement.js';
import { openTestSchema, type OpenedDatabase } from '../../helpers/databases.js';

/** A test's own PostgreSQL schema and pool, with one table `t (v int)`. */
export interface PgTableFixture {
  /** The current test's pool (throws outside hooks and tests). */
  readonly knex: Knex;
  /** The current test's schema (throws outside hooks and tests). */
  readonly schema: string;
  /** The values stored in `t`, ascending. */
  values(): Promise<number[]>;
}

/**
 * Registers hooks that give each test of the enclosing `describe` a fresh schema on the test server
 * with table `t`, and a pool of its own that is destroyed after the test: a connection one test
 * retired, ended or left dirty never reaches the next.
 */
export function pgTablePerTest(): PgTableFixture {
  let opened: OpenedDatabase | undefined;
  let schema: string | undefined;
  const current = (): OpenedDatabase => {
    if (opened === undefined) throw new Error('the fixture is only available inside hooks and tests');
    return opened;
  };
  beforeEach(async function () {
    opened = await openTestSchema();
    await opened.database.knex.schema.createTable('t', (table) => table.integer('v'));
    schema = ((await opened.database.knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name;
  });
  afterEach(async function () {
    await opened?.dispose();
    opened = undefined;
    schema = undefined;
  });
  return {
    get knex(): Knex {
      return current().database.knex;
    },
    get schema(): string {
      current();
      if (schema === undefined) throw new Error('the test schema has no name');
      return schema;
    },
    async values(): Promise<number[]> {
      const rows = (await current().database.knex('t').select('v').orderBy('v')) as { v: number }[];
      return rows.map((row) => row.v);
    },
  };
}

/**
 * Runs `sql` on the connection the pool hands out next (the one the last statement used: the pool is
 * last in, first out) and returns that connection's server process id.
 */
export async function onPooledConnection(knex: Knex, sql: string): Promise<number> {
  const connection = (await knex.client.acquireConnection()) as PgConnection;
  try {
    await connection.query({ text: sql });
    const pid = await connection.query({ text: 'select pg_backend_pid() as pid' });
    return (pid.rows[0] as { pid: number }).pid;
  } finally {
    await knex.client.releaseConnection(connection);
  }
}

/** The server process id of the connection the pool hands out next. */
export function nextBackendPid(knex: Knex): Promise<number> {
  return onPooledConnection(knex, 'select 1');
}

/** Whether the server's session `pid` has ended, waiting up to a second for it. */
export async function backendGone(knex: Knex, pid: number): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const sessions = (await knex.raw('select 1 from pg_stat_activity where pid = ?', [pid])) as { rows: unknown[] };
    if (sessions.rows.length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
