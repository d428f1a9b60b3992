import { tmpdir } from 'node:os';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../lib/db/database-factory.js';
import { fixedStatement, type PgConnection } from '../../lib/db/fixed-statement.js';
import { inPgTransaction } from '../../lib/db/pg-transaction.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { rejectionOf } from '../helpers/rejection.js';
import { backendGone, pgTablePerTest } from './helpers/pg-table-per-test.js';

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
 * to the next one unless it was ended; each test has its own schema and pool.
 */
describe('inPgTransaction when BEGIN, ROLLBACK or a statement fails (real PostgreSQL)', function () {
  const fixture = pgTablePerTest();

  /** A batch whose work fails after storing row 1 (as a failed audit signature would). */
  function batchThatFails(knex: Knex): Promise<never> {
    return inPgTransaction(knex, async (run) => {
      await run(INSERT, [1]);
      throw new Error('signing failed');
    });
  }

  /** The next batch stores only its own row, on another backend: the session of `before` ended on the server. */
  async function expectNextBatchOnANewSession(knex: Knex, before: Backend): Promise<void> {
    await inPgTransaction(knex, (run) => run(INSERT, [2]));
    expect(await fixture.values()).to.deep.equal([2]);
    expect((await nextBackend(knex)).pid, 'the ended connection is not handed out').to.not.equal(before.pid);
    expect(await backendGone(knex, before.pid), 'its session ended on the server').to.equal(true);
  }

  /** The backend of the connection a transaction gets next, and its statement timeout. */
  async function nextBackend(knex: Knex): Promise<Backend> {
    const rows = await inPgTransaction(knex, (run) => run(BACKEND, []));
    return rows[0] as Backend;
  }

  it('ends the connection whose ROLLBACK failed: the next transaction does not run inside the unfinished one', async function () {
    const knex = fixture.knex;
    const before = await nextBackend(knex);
    // A ROLLBACK that never reaches the server (a lost reply looks the same to the client).
    const restore = failOnNextConnection(knex, 'rollback');
    expect((await rejectionOf(batchThatFails(knex), Error).finally(restore)).message).to.equal('signing failed');
    // Back in the pool still inside its transaction, the connection would take the next BEGIN as a
    // warning and its COMMIT would store the failed batch's row too.
    await expectNextBatchOnANewSession(knex, before);
  });

  it('does not wait for the close of a connection it ends: a close that never finishes does not hold the batch', async function () {
    const knex = fixture.knex;
    const before = await nextBackend(knex);
    const restore = failOnNextConnection(knex, 'rollback', { endNeverSettles: true });
    expect((await rejectionOf(batchThatFails(knex), Error).finally(restore)).message).to.equal('signing failed');
    await expectNextBatchOnANewSession(knex, before);
  });

  it('rejects without running its work when BEGIN fails, and ends that connection', async function () {
    const knex = fixture.knex;
    const before = await nextBackend(knex);
    const restore = failOnNextConnection(knex, 'begin');
    let ran = false;
    const refused = await rejectionOf(
      inPgTransaction(knex, async (run) => {
        ran = true;
        return run(INSERT, [1]);
      }),
      Error,
    ).finally(restore);
    expect(refused.message).to.equal('begin failed (injected by the test)');
    expect(ran, 'the work').to.equal(false);
    await expectNextBatchOnANewSession(knex, before);
  });

  it('rejects without running its work on a session left inside an aborted transaction (BEGIN: 25P02), and ends it', async function () {
    const knex = fixture.knex;
    const before = await nextBackend(knex);
    // PostgreSQL refuses such a session's BEGIN.
    const dirty = (await knex.client.acquireConnection()) as PgConnection;
    await dirty.query({ text: 'begin' });
    await dirty.query({ text: 'select 1 / 0' }).catch(() => undefined);
    await knex.client.releaseConnection(dirty);
    let ran = false;
    const refused = await rejectionOf(
      inPgTransaction(knex, async (run) => {
        ran = true;
        return run(INSERT, [1]);
      }),
      Error,
    );
    expect((refused as Error & { code?: string }).code).to.equal('25P02');
    expect(ran, 'the work').to.equal(false);
    await expectNextBatchOnANewSession(knex, before);
  });

  it('rejects on the statement bound, and the next transaction runs on a fresh connection, not behind the dead statement', async function () {
    const bounded: Database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: tmpdir(), searchPath: fixture.schema, postgresBounds: { statementMs: 300 } });
    try {
      const knex = bounded.knex;
      const before = await nextBackend(knex);
      const refused = await rejectionOf(
        inPgTransaction(knex, async (run) => {
          await run(INSERT, [1]);
          await run(SLEEP, [1.5]);
        }),
        Error,
      );
      expect(refused.message).to.match(/no reply from PostgreSQL within 300 ms/);
      await inPgTransaction(knex, (run) => run(INSERT, [2]));
      expect((await nextBackend(knex)).pid).to.not.equal(before.pid);
      expect(await fixture.values()).to.deep.equal([2]);
    } finally {
      await bounded.close();
    }
  });

  it("rejects on the server's statement_timeout (57014), rolls back, and leaves the connection clean for the next transaction", async function () {
    const knex = fixture.knex;
    const before = await nextBackend(knex);
    const refused = await rejectionOf(
      inPgTransaction(knex, async (run) => {
        await run(INSERT, [1]);
        await run(LOCAL_TIMEOUT, ['100ms']);
        await run(SLEEP, [2]);
      }),
      Error,
    );
    expect((refused as Error & { code?: string }).code).to.equal('57014');
    const after = await nextBackend(knex);
    expect(after.pid, 'the same connection').to.equal(before.pid);
    expect(after.timeout, 'the transaction-local setting is gone').to.equal(before.timeout);
    await inPgTransaction(knex, (run) => run(INSERT, [2]));
    expect(await fixture.values()).to.deep.equal([2]);
  });
});

/**
 * Makes the next connection `knex` hands out fail the statement `text` without sending it (and, with
 * `endNeverSettles`, answer its `end` with a promise that never settles, though the close goes ahead);
 * the returned function puts the connection's own `query` and `end` back.
 */
function failOnNextConnection(knex: Knex, text: string, options: { endNeverSettles?: boolean } = {}): () => void {
  const client = knex.client as { acquireConnection(): Promise<PgConnection> };
  const acquire = client.acquireConnection;
  let restore = (): void => undefined;
  client.acquireConnection = async function (this: unknown): Promise<PgConnection> {
    client.acquireConnection = acquire;
    const connection = await acquire.call(this);
    const send = connection.query;
    const end = connection.end;
    connection.query = async (config) => {
      if (config.text === text) throw new Error(`${text} failed (injected by the test)`);
      return send.call(connection, config);
    };
    if (options.endNeverSettles === true) {
      connection.end = () => {
        end.call(connection);
        return new Promise(() => undefined);
      };
    }
    restore = () => {
      connection.query = send;
      connection.end = end;
    };
    return connection;
  };
  return () => {
    client.acquireConnection = acquire;
    restore();
  };
}
