import { tmpdir } from 'node:os';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { fixedStatement, type PgConnection } from '../../lib/db/fixed-statement.js';
import { inPgTransaction } from '../../lib/db/pg-transaction.js';
import { openTestSchema, TEST_DATABASE_URL, type OpenedDatabase } from '../helpers/databases.js';

const INSERT = fixedStatement('pg_transaction_failures_test_insert', 'insert into t (v) values (?::int) returning v');
const BACKEND = fixedStatement('pg_transaction_failures_test_backend', "select pg_backend_pid() as pid, current_setting('statement_timeout') as timeout");
const SLEEP = fixedStatement('pg_transaction_failures_test_sleep', 'select pg_sleep(?::float)');
const LOCAL_TIMEOUT = fixedStatement('pg_transaction_failures_test_local_timeout', "select set_config('statement_timeout', ?, true)");

interface Backend {
  readonly pid: number;
  readonly timeout: string;
}

/**
 * `inPgTransaction` when BEGIN, ROLLBACK or a statement fails (real PostgreSQL): the batch rejects,
 * nothing of it is stored, and the pool never hands its connection out in an unknown state. Each test
 * runs its transactions one after another, so the pool (last in, first out) hands the same connection
 * to the next one unless it was ended.
 */
describe('inPgTransaction when BEGIN, ROLLBACK or a statement fails (real PostgreSQL)', function () {
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

  /** The backend of the connection a transaction gets next, and its statement timeout. */
  async function nextBackend(knex: Knex): Promise<Backend> {
    const rows = await inPgTransaction(knex, (run) => run(BACKEND, []));
    return rows[0] as Backend;
  }

  async function rejection(promise: Promise<unknown>): Promise<Error> {
    return promise.then(
      () => expect.fail('expected a rejection'),
      (error: unknown) => error as Error,
    );
  }

  it('ends the connection whose ROLLBACK failed: the next transaction does not run inside the unfinished one', async function () {
    const knex = opened.database.knex;
    const before = await nextBackend(knex);
    // A ROLLBACK that never reaches the server (a lost reply looks the same to the client).
    const restore = failOnNextConnection(knex, 'rollback');
    const refused = await rejection(
      inPgTransaction(knex, async (run) => {
        await run(INSERT, [1]);
        throw new Error('signing failed');
      }),
    ).finally(restore);
    expect(refused.message).to.equal('signing failed');
    // Back in the pool still inside its transaction, the connection would take the next BEGIN as a
    // warning and its COMMIT would store the failed batch's row too.
    await inPgTransaction(knex, (run) => run(INSERT, [2]));
    expect(await values()).to.deep.equal([2]);
    expect((await nextBackend(knex)).pid).to.not.equal(before.pid);
  });

  it('rejects without running its work when BEGIN fails, and ends that connection', async function () {
    const knex = opened.database.knex;
    // A session left inside an aborted transaction: PostgreSQL refuses its BEGIN (25P02).
    const dirty = (await knex.client.acquireConnection()) as PgConnection;
    await dirty.query({ text: 'begin' });
    await dirty.query({ text: 'select 1 / 0' }).catch(() => undefined);
    await knex.client.releaseConnection(dirty);
    let ran = false;
    const refused = await rejection(
      inPgTransaction(knex, async (run) => {
        ran = true;
        return run(INSERT, [1]);
      }),
    );
    expect((refused as Error & { code?: string }).code).to.equal('25P02');
    expect(ran, 'the work').to.equal(false);
    await inPgTransaction(knex, (run) => run(INSERT, [2]));
    expect(await values()).to.deep.equal([2]);
  });

  it('rejects on the statement bound, and the next transaction runs on a fresh connection, not behind the dead statement', async function () {
    const schema = ((await opened.database.knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name;
    const bounded: Database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: tmpdir(), searchPath: schema, postgresBounds: { statementMs: 300 } });
    try {
      const knex = bounded.knex;
      const before = await nextBackend(knex);
      const refused = await rejection(
        inPgTransaction(knex, async (run) => {
          await run(INSERT, [1]);
          await run(SLEEP, [1.5]);
        }),
      );
      expect(refused.message).to.match(/no reply from PostgreSQL within 300 ms/);
      await inPgTransaction(knex, (run) => run(INSERT, [2]));
      expect((await nextBackend(knex)).pid).to.not.equal(before.pid);
      expect(await values()).to.deep.equal([2]);
    } finally {
      await bounded.close();
    }
  });

  it("rejects on the server's statement_timeout (57014), rolls back, and leaves the connection clean for the next transaction", async function () {
    const knex = opened.database.knex;
    const before = await nextBackend(knex);
    const refused = await rejection(
      inPgTransaction(knex, async (run) => {
        await run(INSERT, [1]);
        await run(LOCAL_TIMEOUT, ['100ms']);
        await run(SLEEP, [2]);
      }),
    );
    expect((refused as Error & { code?: string }).code).to.equal('57014');
    const after = await nextBackend(knex);
    expect(after.timeout, 'the transaction-local setting is gone').to.equal(before.timeout);
    await inPgTransaction(knex, (run) => run(INSERT, [2]));
    expect(await values()).to.deep.equal([2]);
  });
});

/**
 * Makes the next connection `knex` hands out fail the statement `text` without sending it; the
 * returned function puts the connection's own `query` back (if it is still in the pool).
 */
function failOnNextConnection(knex: Knex, text: string): () => void {
  const client = knex.client as { acquireConnection(): Promise<PgConnection> };
  const acquire = client.acquireConnection;
  let restore = (): void => undefined;
  client.acquireConnection = async function (this: unknown): Promise<PgConnection> {
    client.acquireConnection = acquire;
    const connection = await acquire.call(this);
    const send = connection.query;
    connection.query = async (config) => {
      if (config.text === text) throw new Error(`${text} failed (injected by the test)`);
      return send.call(connection, config);
    };
    restore = () => void (connection.query = send);
    return connection;
  };
  return () => {
    client.acquireConnection = acquire;
    restore();
  };
}
