import type { Knex } from 'knex';
import type { Binding, PgConnection, Statements } from './fixed-statement.js';

/**
 * `work` in one transaction on one pooled node-postgres connection, its statements named prepared
 * statements: what `knex.transaction` does, at a fraction of its client CPU (knex builds a client and
 * a knex instance per transaction; about 120 µs a transaction against 40 µs here). PostgreSQL only.
 * Commits when `work` resolves, rolls back when it rejects. A COMMIT that does not answer COMMIT (the
 * server rolled back a transaction a swallowed error had aborted) rejects: never taken as stored. A
 * connection whose BEGIN or ROLLBACK failed is ended, so the pool never hands out a session in an
 * unknown state, perhaps still in a transaction (the pool refuses a connection whose end was called,
 * `boundedPgSettings`); the batch does not wait for that close, which has no bound of its own. Its
 * statements are not knex's, so it emits knex's `query-response` and `query-error` for them itself;
 * a statement sent through the runner after the transaction ended is refused.
 */
export async function inPgTransaction<T>(knex: Knex, work: (statements: Statements) => Promise<T>): Promise<T> {
  const connection = (await knex.client.acquireConnection()) as PgConnection;
  let finished = false;
  // Each answer and error is told to knex's listeners as knex's own statements are: the push model's
  // `DatabaseOutage` learns of a lost connection, and of its end, from the pull loop's writes too.
  const query = async (config: { text: string; name?: string; values?: readonly Binding[] }): Promise<{ rows: unknown[]; command: string }> => {
    try {
      const result = await connection.query(config);
      knex.emit('query-response', result.rows, { sql: config.text });
      return result;
    } catch (error) {
      knex.emit('query-error', error, { sql: config.text });
      throw error;
    }
  };
  try {
    await query({ text: 'begin' }).catch(async (error: unknown) => {
      // The session's state is unknown: BEGIN fails on a session left inside an aborted transaction
      // (25P02), which back in the pool would fail every transaction handed it.
      endWithoutWaiting(connection);
      throw error;
    });
    try {
      const result = await work(async (statement, values) => {
        // A statement after COMMIT or ROLLBACK would run on a connection back in the pool, outside this transaction.
        if (finished) throw new Error(`statement ${statement.name} sent after its transaction ended`);
        return (await query({ name: statement.name, text: statement.pgSql, values })).rows;
      });
      finished = true;
      const commit = await query({ text: 'commit' });
      if (commit.command !== 'COMMIT') throw new Error(`the transaction was not committed (${commit.command})`);
      return result;
    } catch (error) {
      finished = true;
      await query({ text: 'rollback' }).catch(() => endWithoutWaiting(connection));
      throw error;
    }
  } finally {
    finished = true;
    await knex.client.releaseConnection(connection);
  }
}

/** Starts closing `connection`; an error closing it is of no use to anyone (the session is dropped either way). */
function endWithoutWaiting(connection: PgConnection): void {
  Promise.resolve(connection.end()).catch(() => undefined);
}
