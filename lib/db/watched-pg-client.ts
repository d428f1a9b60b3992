import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import pg from 'pg';

const require = createRequire(import.meta.url);
// knex's PostgreSQL dialect, the class behind `client: 'pg'` (knex-pglite extends it the same way).
const KnexPgClient = require('knex/lib/dialects/postgres/index.js') as typeof Knex.Client;

/**
 * knex's PostgreSQL client whose node-postgres connections are handed to `watch` as they are
 * constructed. A pool hook (`afterCreate`) runs only after knex's own set-up statements on a new
 * connection (`select version()`, `set search_path`); a connection whose set-up got no reply was then
 * never watched, and knex, failing the acquire, left it open.
 */
export function knexPgClientWatching(watch: (connection: pg.Client) => void): typeof Knex.Client {
  class WatchedConnection extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      watch(this);
    }
  }
  const driver = { ...pg, Client: WatchedConnection };
  return class WatchedKnexPgClient extends KnexPgClient {
    /** knex asks its dialect for the driver module once, when the client is constructed. */
    _driver(): unknown {
      return driver;
    }
  };
}
