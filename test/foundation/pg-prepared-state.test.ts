import { expect } from 'chai';
import { fixedStatement, runFixedStatement, type PgConnection } from '../../lib/db/fixed-statement.js';
import { inPgTransaction } from '../../lib/db/pg-transaction.js';
import { CONNECTION_RETIRED_WARNING } from '../../lib/db/postgres-bounds.js';
import { backendGone, nextBackendPid, onPooledConnection, pgTablePerTest } from './helpers/pg-table-per-test.js';

const INSERT = fixedStatement('pg_prepared_state_test_insert', 'insert into t (v) values (?::int) returning v');
const SELECT_ONE = fixedStatement('pg_prepared_state_test_one', 'select 1');
const SELECT_WIDE = fixedStatement('pg_prepared_state_test_select', 'select w from wide where w = ?::int');

/**
 * The server forgetting or invalidating a statement node-postgres has prepared on a pooled connection
 * (real PostgreSQL). Statements here run one after another, so the pool (last in, first out) hands
 * out the same connection each time unless it was discarded. Each test has its own schema and pool.
 */
describe('prepared statements the server dropped or invalidated: the connection is replaced (real PostgreSQL)', function () {
  const fixture = pgTablePerTest();
  let warnings: Error[];
  const collect = (warning: Error): void => {
    if ((warning as { code?: unknown }).code === CONNECTION_RETIRED_WARNING) warnings.push(warning);
  };

  beforeEach(function () {
    warnings = [];
    process.on('warning', collect);
  });

  afterEach(function () {
    process.off('warning', collect);
  });

  /** `write`'s outcome: the error's SQLSTATE, or 'stored'. */
  async function outcome(write: () => Promise<unknown>): Promise<string> {
    try {
      await write();
      return 'stored';
    } catch (error) {
      return String((error as { code?: unknown }).code);
    }
  }

  /** Process warnings are emitted on the next tick. */
  async function retiredWarnings(): Promise<string[]> {
    await new Promise((resolve) => setImmediate(resolve));
    return warnings.map((warning) => warning.message);
  }

  it('a pool statement (the broker path) fails once after DEALLOCATE ALL, and its retry runs on a fresh connection', async function () {
    const knex = fixture.knex;
    const write = (value: number) => () => runFixedStatement(knex, true, INSERT, [value]);
    expect(await outcome(write(1))).to.equal('stored');
    const forgetful = await onPooledConnection(knex, 'deallocate all');
    expect(await outcome(write(2)), 'the statement the server no longer holds').to.equal('26000');
    expect(await outcome(write(3)), 'the retry').to.equal('stored');
    expect(await outcome(write(4))).to.equal('stored');
    expect(await nextBackendPid(knex), 'the connection that failed was discarded').to.not.equal(forgetful);
    expect(await backendGone(knex, forgetful), 'its session ended on the server').to.equal(true);
    expect(await fixture.values()).to.deep.equal([1, 3, 4]);
    const retired = await retiredWarnings();
    expect(retired).to.have.length(1);
    expect(retired[0]).to.match(/SQLSTATE 26000: prepared statement "pg_prepared_state_test_insert_[0-9a-f]{8}" does not exist/);
  });

  it('a transaction (the pull batch path) fails once after DISCARD ALL, rolls back, and its retry commits on a fresh connection', async function () {
    const knex = fixture.knex;
    const batch = (value: number) => () => inPgTransaction(knex, async (run) => [...(await run(INSERT, [value])), ...(await run(INSERT, [value + 10]))]);
    expect(await outcome(batch(1))).to.equal('stored');
    const forgetful = await onPooledConnection(knex, 'discard all');
    expect(await outcome(batch(2)), 'the statement the server no longer holds').to.equal('26000');
    expect(await outcome(batch(3)), 'the retry').to.equal('stored');
    expect(await nextBackendPid(knex)).to.not.equal(forgetful);
    expect(await fixture.values()).to.deep.equal([1, 3, 11, 13]);
  });

  it('warns once for a retired connection, however many of its statements fail after', async function () {
    const knex = fixture.knex;
    await inPgTransaction(knex, (run) => run(INSERT, [1]));
    await onPooledConnection(knex, 'deallocate all');
    const codes: string[] = [];
    const batch = inPgTransaction(knex, async (run) => {
      codes.push(await outcome(() => run(INSERT, [2])));
      codes.push(await outcome(() => run(INSERT, [3])));
      // The transaction is aborted now: a statement the session does not lack fails with 25P02.
      codes.push(await outcome(() => run(SELECT_ONE, [])));
    });
    expect(await outcome(() => batch), 'the COMMIT of an aborted transaction').to.equal('undefined');
    expect(codes).to.deep.equal(['26000', '26000', '25P02']);
    expect(await retiredWarnings()).to.have.length(1);
  });

  it('a statement whose cached plan a column type change invalidated (0A000) fails once, then runs re-prepared on a fresh connection', async function () {
    const knex = fixture.knex;
    await knex.schema.createTable('wide', (table) => table.integer('w'));
    await knex('wide').insert({ w: 7 });
    const read = () => runFixedStatement(knex, true, SELECT_WIDE, [7]);
    expect(await read()).to.deep.equal([{ w: 7 }]);
    const before = await nextBackendPid(knex);
    await knex.raw('alter table wide alter column w type bigint');
    expect(await outcome(read), 'the cached plan of the old column type').to.equal('0A000');
    // node-postgres answers a bigint as a string: the statement was parsed again, against the new type.
    expect(await read(), 'the retry').to.deep.equal([{ w: '7' }]);
    expect(await nextBackendPid(knex)).to.not.equal(before);
  });

  it('a statement whose name the session already holds for other SQL (42P05 at Parse, 08P01 at Bind) fails once', async function () {
    const knex = fixture.knex;
    const taken = fixedStatement('pg_prepared_state_test_taken', 'select ?::int as n');
    const read = () => runFixedStatement(knex, true, taken, [5]);
    // What a pooler handing over another client's session looks like: the name prepared, not by node-postgres.
    const first = await onPooledConnection(knex, `prepare ${taken.name} (int, int) as select $1 + $2 as n`);
    expect(await outcome(read), 'Parse of a name the session holds').to.equal('42P05');
    expect(await read(), 'the retry').to.deep.equal([{ n: 5 }]);
    // Now node-postgres has it prepared: the session's statement under that name is swapped.
    const second = await onPooledConnection(knex, `deallocate ${taken.name}; prepare ${taken.name} (int, int) as select $1 + $2 as n`);
    expect(second, 'the retry ran on a fresh connection').to.not.equal(first);
    expect(await outcome(read), 'Bind with one value for a statement of two').to.equal('08P01');
    expect(await read(), 'the retry').to.deep.equal([{ n: 5 }]);
    expect(await nextBackendPid(knex)).to.not.equal(second);
  });

  it('a session left inside an aborted transaction (25P02) fails one pool statement, which retires it', async function () {
    const knex = fixture.knex;
    const aborted = await nextBackendPid(knex);
    const dirty = (await knex.client.acquireConnection()) as PgConnection;
    await dirty.query({ text: 'begin' });
    await dirty.query({ text: 'select 1 / 0' }).catch(() => undefined);
    await knex.client.releaseConnection(dirty);
    const write = (value: number) => () => runFixedStatement(knex, true, INSERT, [value]);
    expect(await outcome(write(1)), 'the write handed the aborted session').to.equal('25P02');
    expect(await outcome(write(2)), 'the retry').to.equal('stored');
    expect(await outcome(write(3))).to.equal('stored');
    expect(await fixture.values()).to.deep.equal([2, 3]);
    expect(await nextBackendPid(knex)).to.not.equal(aborted);
    expect(await backendGone(knex, aborted), 'its session ended on the server').to.equal(true);
  });

  it('names two statements of one base name and different SQL apart, and runs each as itself on one connection', async function () {
    const knex = fixture.knex;
    const older = fixedStatement('pg_prepared_state_test_version', 'select ?::int + 1 as n');
    const newer = fixedStatement('pg_prepared_state_test_version', 'select ?::int * 10 as n');
    const before = await nextBackendPid(knex);
    expect(await runFixedStatement(knex, true, older, [4])).to.deep.equal([{ n: 5 }]);
    expect(await runFixedStatement(knex, true, newer, [4])).to.deep.equal([{ n: 40 }]);
    expect(await runFixedStatement(knex, true, older, [6])).to.deep.equal([{ n: 7 }]);
    expect(await nextBackendPid(knex), 'one connection').to.equal(before);
    expect(older.name).to.match(/^pg_prepared_state_test_version_[0-9a-f]{8}$/);
    expect(newer.name).to.not.equal(older.name);
    expect(fixedStatement('pg_prepared_state_test_version', 'select ?::int + 1 as n').name, 'the same SQL').to.equal(older.name);
  });

  it('refuses a statement name PostgreSQL would cut (63 bytes), which would cut its hash', function () {
    expect(() => fixedStatement('x'.repeat(54), 'select 1')).to.not.throw();
    expect(() => fixedStatement('x'.repeat(55), 'select 1')).to.throw(/longer than PostgreSQL's 63 bytes/);
  });

  it('leaves a connection whose statements fail for other reasons in the pool', async function () {
    const knex = fixture.knex;
    const broken = fixedStatement('pg_prepared_state_test_broken', 'select 1 / (?::int - 1)');
    const before = await nextBackendPid(knex);
    expect(await outcome(() => runFixedStatement(knex, true, broken, [1]))).to.equal('22012');
    expect(await nextBackendPid(knex)).to.equal(before);
    expect(await retiredWarnings()).to.deep.equal([]);
  });
});
