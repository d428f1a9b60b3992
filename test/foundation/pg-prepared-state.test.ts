import { expect } from 'chai';
import type { Knex } from 'knex';
import { fixedStatement, runFixedStatement, type PgConnection } from '../../lib/db/fixed-statement.js';
import { inPgTransaction } from '../../lib/db/pg-transaction.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const INSERT = fixedStatement('pg_prepared_state_test_insert', 'insert into t (v) values (?::int) returning v');
const SELECT_WIDE = fixedStatement('pg_prepared_state_test_select', 'select w from wide where w = ?::int');

/**
 * The server forgetting or invalidating a statement node-postgres has prepared on a pooled connection
 * (real PostgreSQL). Statements here run one after another, so the pool (last in, first out) hands
 * out the same connection each time unless it was discarded.
 */
describe('prepared statements the server dropped or invalidated: the connection is replaced (real PostgreSQL)', function () {
  let opened: OpenedDatabase;

  before(async function () {
    opened = await openTestSchema();
    await opened.database.knex.schema.createTable('t', (table) => table.integer('v'));
  });

  after(async function () {
    await opened?.dispose();
  });

  beforeEach(async function () {
    await opened.database.knex('t').delete();
  });

  async function values(): Promise<number[]> {
    return ((await opened.database.knex('t').select('v').orderBy('v')) as { v: number }[]).map((row) => row.v);
  }

  /** Runs `sql` on the connection the pool hands out next (the one the last statement used). */
  async function onPooledConnection(sql: string): Promise<number> {
    const knex = opened.database.knex;
    const connection = (await knex.client.acquireConnection()) as PgConnection;
    try {
      await connection.query({ text: sql });
      const pid = await connection.query({ text: 'select pg_backend_pid() as pid' });
      return (pid.rows[0] as { pid: number }).pid;
    } finally {
      await knex.client.releaseConnection(connection);
    }
  }

  /** Whether the server's session `pid` has ended, waiting up to a second for it. */
  async function backendGone(pid: number): Promise<boolean> {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const sessions = (await opened.database.knex.raw('select 1 from pg_stat_activity where pid = ?', [pid])) as { rows: unknown[] };
      if (sessions.rows.length === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  /** `write`'s outcome: the error's SQLSTATE, or 'stored'. */
  async function outcome(write: () => Promise<unknown>): Promise<string> {
    try {
      await write();
      return 'stored';
    } catch (error) {
      return String((error as { code?: unknown }).code);
    }
  }

  it('a pool statement (the broker path) fails once after DEALLOCATE ALL, and its retry runs on a fresh connection', async function () {
    const knex = opened.database.knex;
    const write = (value: number) => () => runFixedStatement(knex, true, INSERT, [value]);
    expect(await outcome(write(1))).to.equal('stored');
    const forgetful = await onPooledConnection('deallocate all');
    expect(await outcome(write(2)), 'the statement the server no longer holds').to.equal('26000');
    expect(await outcome(write(3)), 'the retry').to.equal('stored');
    expect(await outcome(write(4))).to.equal('stored');
    expect(await onPooledConnection('select 1'), 'the connection that failed was discarded').to.not.equal(forgetful);
    expect(await backendGone(forgetful), 'its session ended on the server').to.equal(true);
    expect(await values()).to.deep.equal([1, 3, 4]);
  });

  it('a transaction (the pull batch path) fails once after DISCARD ALL, rolls back, and its retry commits', async function () {
    const knex = opened.database.knex;
    const batch = (value: number) => () => inPgTransaction(knex, async (run) => [...(await run(INSERT, [value])), ...(await run(INSERT, [value + 10]))]);
    expect(await outcome(batch(1))).to.equal('stored');
    await onPooledConnection('discard all');
    expect(await outcome(batch(2)), 'the statement the server no longer holds').to.equal('26000');
    expect(await outcome(batch(3)), 'the retry').to.equal('stored');
    expect(await values()).to.deep.equal([1, 3, 11, 13]);
  });

  it('a statement whose cached plan a column type change invalidated (0A000) fails once, then runs re-prepared', async function () {
    const knex = opened.database.knex;
    await knex.schema.createTable('wide', (table) => table.integer('w'));
    await knex('wide').insert({ w: 7 });
    const read = () => runFixedStatement(knex, true, SELECT_WIDE, [7]);
    expect(await read()).to.deep.equal([{ w: 7 }]);
    await knex.raw('alter table wide alter column w type bigint');
    expect(await outcome(read), 'the cached plan of the old column type').to.equal('0A000');
    // node-postgres answers a bigint as a string: the statement was parsed again, against the new type.
    expect(await read(), 'the retry').to.deep.equal([{ w: '7' }]);
  });

  it('a statement whose name the session already holds for other SQL (42P05 at Parse, 08P01 at Bind) fails once', async function () {
    const knex = opened.database.knex;
    const taken = fixedStatement('pg_prepared_state_test_taken', 'select ?::int as n');
    const read = () => runFixedStatement(knex, true, taken, [5]);
    // What a pooler handing over another client's session looks like: the name prepared, not by node-postgres.
    await onPooledConnection(`prepare ${taken.name} (int, int) as select $1 + $2 as n`);
    expect(await outcome(read), 'Parse of a name the session holds').to.equal('42P05');
    expect(await read(), 'the retry').to.deep.equal([{ n: 5 }]);
    // Now node-postgres has it prepared: the session's statement under that name is swapped.
    await onPooledConnection(`deallocate ${taken.name}; prepare ${taken.name} (int, int) as select $1 + $2 as n`);
    expect(await outcome(read), 'Bind with one value for a statement of two').to.equal('08P01');
    expect(await read(), 'the retry').to.deep.equal([{ n: 5 }]);
  });

  it('leaves a connection whose statements fail for other reasons in the pool', async function () {
    const knex: Knex = opened.database.knex;
    const broken = fixedStatement('pg_prepared_state_test_broken', 'select 1 / (?::int - 1)');
    const before = await onPooledConnection('select 1');
    expect(await outcome(() => runFixedStatement(knex, true, broken, [1]))).to.equal('22012');
    expect(await onPooledConnection('select 1')).to.equal(before);
  });
});
