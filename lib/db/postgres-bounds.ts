import { AsyncLocalStorage } from 'node:async_hooks';
import { inspect } from 'node:util';
import type { Knex } from 'knex';
import type pg from 'pg';
import { knexPgClientWatching } from './watched-pg-client.js';

/**
 * How long ironlime waits on PostgreSQL before giving up. Without them a database behind a network
 * that drops packets (firewall black hole, pulled cable, paused VM) makes a statement on an open
 * connection wait until the kernel abandons the TCP retransmissions (about 15 minutes), so nothing
 * fails, nothing is retried and `/health` stays ready. With them the wait ends in an error the
 * services' retry, back-off and health logic already handle.
 */
export interface PostgresBounds {
  /** Opening one connection, up to the server's ReadyForQuery. */
  readonly connectMs: number;
  /** Waiting for a connection from the pool (all ten busy, or being opened). */
  readonly acquireMs: number;
  /** One statement's reply; migrations are exempt (see `withoutStatementBound`). */
  readonly statementMs: number;
  /** Idle time before TCP keepalive probes start, so a pooled connection to a vanished peer ends. */
  readonly keepAliveDelayMs: number;
  /**
   * Server side: a session idle inside a transaction this long is ended by PostgreSQL. A client that
   * went silent mid-transaction (or whose connection the statement bound dropped while the server
   * still sees it open) would otherwise hold its row and advisory locks, blocking every other service.
   */
  readonly idleInTransactionMs: number;
}

/**
 * The services' statements are single-row writes, indexed reads and bounded batches that take
 * milliseconds; 30 s leaves room for a loaded server while a silent one is noticed in half a minute.
 */
export const DEFAULT_POSTGRES_BOUNDS: PostgresBounds = {
  connectMs: 10_000,
  acquireMs: 15_000,
  statementMs: 30_000,
  keepAliveDelayMs: 10_000,
  idleInTransactionMs: 60_000,
};

/**
 * Bound for statements run under `withoutStatementBound`: node-postgres cannot switch its bound off
 * per statement, so migrations (index builds on large tables, waits for locks held by running
 * services during a rolling upgrade) get a day instead.
 */
const MIGRATION_STATEMENT_MS = 24 * 60 * 60 * 1000;

const unbounded = new AsyncLocalStorage<true>();
/** Scopes of `withoutStatementBound` still running. */
let openUnboundedScopes = 0;

/**
 * Runs `work` with statements allowed to take as long as they need (schema migrations). It is
 * awaited inside the scope because a knex builder only starts when its `then` is called.
 */
export async function withoutStatementBound<T>(work: () => PromiseLike<T>): Promise<T> {
  openUnboundedScopes += 1;
  try {
    return await unbounded.run(true, async () => await work());
  } finally {
    openUnboundedScopes -= 1;
    // On Node 20 a storage that has run keeps async promise hooks on for the whole process (about
    // 10 % more CPU on the broker's resource answer, docs/broker.md); with no scope left open they
    // are switched off again (the next `run` switches them back on).
    if (openUnboundedScopes === 0) unbounded.disable();
  }
}

type QueryCallback = (error: Error | null, result?: unknown) => void;

/** The part of a node-postgres `Client` that knex uses for its statements. */
interface PgClient {
  query(config: unknown, callback?: QueryCallback): unknown;
  end(callback?: (error?: Error) => void): unknown;
}

/** node-postgres's error when `query_timeout` elapses. */
const PG_QUERY_TIMEOUT = 'Query read timeout';

/**
 * SQLSTATEs that say the server's prepared statements on a connection are not what node-postgres
 * believes it prepared there (it parses a named statement once per connection and only sends Bind
 * after that): 26000, the name is gone (DEALLOCATE, DISCARD ALL: a pooler in transaction mode or a
 * session reset); 0A000, the statement's cached plan would change its result type (a migration
 * altered a column it returns); 42P05, the name is already taken (a pooler handed over another
 * client's session); 08P01, Bind does not fit the statement under that name. Each repeats on every
 * later use of the statement on that connection. 25P02 (a session inside an aborted transaction) is
 * retired too: a path that got such a session from the pool fails every statement on it.
 */
export const PREPARED_STATE_LOST: ReadonlySet<string> = new Set(['26000', '0A000', '42P05', '08P01', '25P02']);

/** The process warning's code when a connection is retired. */
export const CONNECTION_RETIRED_WARNING = 'IRONLIME_PG_CONNECTION_RETIRED';

/**
 * The knex settings for a bounded pool. node-postgres's `query_timeout` fails the statement but
 * leaves it as the connection's active query: the connection would go back to the pool and every
 * later statement on it would queue behind the dead one. So a connection whose statement timed out
 * is ended (node-postgres destroys the socket when a query is still active) and refused by the
 * pool's validation, and the caller gets an error that says what happened. This holds from the
 * connection's first statement, knex's set-up ones included (`knexPgClientWatching`).
 *
 * A connection whose statement failed with a code of `PREPARED_STATE_LOST` is retired: it still
 * runs what its holder sends (the ROLLBACK of its transaction), but the pool's validation refuses
 * it when it is next picked (or the pool's idle reaper closes it first) and ends it, so the
 * caller's retry runs on a fresh connection that prepares its statements again. Without
 * this, a busy pool (never idle long enough to close it) failed every write with that statement
 * until the process restarted. Each retirement is a process warning (`CONNECTION_RETIRED_WARNING`):
 * the services' loggers are not reachable from the pool's settings, and the warning reaches stderr
 * (or a `process.on('warning')` listener) wherever the database was opened. A connection someone
 * ended is retired as well, so the pool never hands it out while its close is still under way.
 * knex's own log messages go through `KNEX_LOG`.
 */
export function boundedPgSettings(
  url: string,
  bounds: PostgresBounds,
): Pick<Knex.Config, 'client' | 'connection' | 'pool' | 'acquireConnectionTimeout' | 'log'> {
  const abandoned = new WeakSet<PgClient>();
  const retired = new WeakSet<PgClient>();
  const watchStatements = (client: PgClient): void => {
    const send = client.query.bind(client);
    const end = client.end.bind(client);
    // knex ends a connection it destroys with a callback; inPgTransaction without.
    client.end = (callback) => {
      retired.add(client);
      return end(callback);
    };
    /**
     * The error the caller sees: a timed-out statement ends its connection, which is never reused; a
     * connection that lost its prepared statements is retired.
     */
    const seen = (error: Error, boundMs: number): Error => {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && PREPARED_STATE_LOST.has(code) && !retired.has(client)) {
        retired.add(client);
        process.emitWarning(`PostgreSQL connection retired after SQLSTATE ${code}: ${error.message}`, { code: CONNECTION_RETIRED_WARNING });
      }
      if (error.message !== PG_QUERY_TIMEOUT) return error;
      abandoned.add(client);
      client.end();
      return noReply(`no reply from PostgreSQL within ${boundMs} ms; connection dropped`, error);
    };
    client.query = (given, callback) => {
      // knex's version check sends bare text.
      const config = typeof given === 'string' ? { text: given } : given;
      if (!isPlainQuery(config)) {
        return send(given, callback);
      }
      if (abandoned.has(client)) {
        // Typically knex's ROLLBACK after the timed-out statement: say why rather than "not queryable".
        const dropped = noReply('connection dropped: an earlier statement had no reply from PostgreSQL');
        if (callback === undefined) return Promise.reject(dropped);
        process.nextTick(() => callback(dropped));
        return undefined;
      }
      const boundMs = unbounded.getStore() === true ? MIGRATION_STATEMENT_MS : bounds.statementMs;
      const bounded = { ...config, query_timeout: boundMs };
      if (callback === undefined) {
        // The promise form (the broker's prepared statements).
        return (send(bounded) as Promise<unknown>).catch((error: Error) => {
          throw seen(error, boundMs);
        });
      }
      return send(bounded, (error, result) => callback(error ? seen(error, boundMs) : error, result));
    };
  };
  return {
    client: knexPgClientWatching((client) => watchStatements(client as unknown as PgClient)),
    connection: boundedConnectionSettings(url, bounds),
    acquireConnectionTimeout: bounds.acquireMs,
    pool: {
      min: 0,
      max: 10,
      validate: (client: PgClient) => !abandoned.has(client) && !retired.has(client),
    },
    log: KNEX_LOG,
  };
}

/** The warning code of what knex itself reports about the pool or its use (`KNEX_LOG`). */
export const KNEX_WARNING = 'IRONLIME_KNEX';

/**
 * Where knex's own messages go instead of `console.log` (stdout, with a stack trace, before the
 * CLI's own sentence). A failed acquire is dropped: the caller of that statement gets the error
 * (`DatabaseUnavailable` at open, the statement's own error later) and reports it. Every other
 * warning, error or deprecation is a process warning (stderr, or a `process.on('warning')`
 * listener), like a retired connection. Debug lines only come with knex's `debug` option, never set.
 */
export const KNEX_LOG: Knex.Logger = {
  warn: (message) => {
    const text = logText(message);
    if (!text.startsWith('Acquire connection error')) process.emitWarning(text, { code: KNEX_WARNING });
  },
  error: (message) => process.emitWarning(logText(message), { code: KNEX_WARNING }),
  // knex hands its own "<method> is deprecated, please use <alternative>" sentence as the one argument.
  deprecate: (message: string) => process.emitWarning(logText(message), { code: KNEX_WARNING, type: 'DeprecationWarning' }),
  debug: () => undefined,
};

function logText(message: unknown): string {
  return typeof message === 'string' ? message : inspect(message);
}

/** What `boundedConnectionSettings` sets: fields of node-postgres's client settings, which knex's pg dialect takes as they are. */
export type BoundedConnectionSettings = Pick<
  pg.ClientConfig,
  'connectionString' | 'connectionTimeoutMillis' | 'query_timeout' | 'keepAlive' | 'keepAliveInitialDelayMillis' | 'idle_in_transaction_session_timeout'
>;

/**
 * One connection's settings under `bounds` (URL with its TLS parameters, connect and statement bounds,
 * TCP keepalive): the pool's connections, and a connection opened outside it
 * (`Database.newSessionClient`).
 */
export function boundedConnectionSettings(url: string, bounds: PostgresBounds): BoundedConnectionSettings {
  return {
    connectionString: url,
    connectionTimeoutMillis: bounds.connectMs,
    query_timeout: bounds.statementMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: bounds.keepAliveDelayMs,
    idle_in_transaction_session_timeout: bounds.idleInTransactionMs,
  };
}

/**
 * The error for a statement without reply. Its code is Node's for a socket timeout, so code that
 * tells an unreachable database from a failed statement (the push verifier's outage watch) counts it
 * as the former.
 */
function noReply(message: string, cause?: Error): Error {
  return Object.assign(new Error(message, cause === undefined ? {} : { cause }), { code: 'ETIMEDOUT' });
}

/** A statement knex built (text and values), not a submittable such as a query stream. */
function isPlainQuery(config: unknown): config is Record<string, unknown> {
  return typeof config === 'object' && config !== null && typeof (config as { submit?: unknown }).submit !== 'function';
}
