import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { DatabaseUnavailable } from '../../interfaces/errors.js';
import { beginPgliteFirstStart } from './pglite-first-start.js';
import { lockPgliteFolder } from './pglite-folder-lock.js';
import { boundedConnectionSettings, boundedPgSettings, DEFAULT_POSTGRES_BOUNDS, KNEX_LOG, type PostgresBounds } from './postgres-bounds.js';

/** An open database: a knex instance on PostgreSQL (`pg`) or on embedded PGlite. */
export interface Database {
  readonly knex: Knex;
  readonly kind: 'postgres' | 'pglite';
  /** Closes the pool (and, for PGlite, the embedded database, then releases its folder lock). */
  close(): Promise<void>;
  /**
   * PostgreSQL only: a new connection outside the pool, not yet connected, with the pool's URL (TLS
   * included) and bounds — for state a session holds as long as it lives (the verifier's process lock).
   * The caller connects it, listens for its `error` event and ends it.
   */
  readonly newSessionClient?: () => pg.Client;
}

export interface DatabaseOptions {
  /** A `postgres://` URL; absent means embedded PGlite under `<dataDir>/pglite`. */
  readonly url?: string;
  /** ironlime's data folder; created when missing. Only PGlite stores anything in it. */
  readonly dataDir: string;
  /**
   * The schema to work in (it must exist). Absent means the server's default (`public`). Tests use
   * a fresh schema each so they can share one database.
   */
  readonly searchPath?: string;
  /** Overrides of `DEFAULT_POSTGRES_BOUNDS` (ignored for PGlite, which has no network to lose). */
  readonly postgresBounds?: Partial<PostgresBounds>;
}

/**
 * Opens the database and checks it answers (`select 1`), so a wrong URL fails here, at boot, with a
 * coded error rather than at the first query. PGlite is single-connection (knex-pglite pins the pool
 * to one), which is fine for one process; a fleet of services shares one PostgreSQL instead. A PGlite
 * folder is locked for the process that opens it until `close` (`lockPgliteFolder`). Every
 * wait on PostgreSQL is bounded (see `PostgresBounds`), so a silent network surfaces as an error.
 *
 * @throws DatabaseUnavailable when the server cannot be reached, or the PGlite folder cannot be opened
 *   or is open in another process.
 */
export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  const kind = options.url === undefined ? 'pglite' : 'postgres';
  const searchPath = options.searchPath === undefined ? {} : { searchPath: [options.searchPath] };
  let knex: Knex;
  let newSessionClient: (() => pg.Client) | undefined;
  let release = (): void => undefined;
  let firstStartDone = (): void => undefined;
  if (options.url === undefined) {
    const filename = path.resolve(options.dataDir, 'pglite');
    mkdirSync(filename, { recursive: true });
    release = lockPgliteFolder(filename);
    try {
      firstStartDone = beginPgliteFirstStart(filename);
    } catch (error) {
      release();
      throw error;
    }
    // knex's own log as on PostgreSQL: a folder PGlite cannot open printed its stack on stdout.
    knex = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: { filename }, log: KNEX_LOG, ...searchPath });
  } else {
    const { url } = options;
    const bounds = { ...DEFAULT_POSTGRES_BOUNDS, ...options.postgresBounds };
    knex = knexFactory({ ...boundedPgSettings(url, bounds), ...searchPath });
    newSessionClient = () => new pg.Client(boundedConnectionSettings(url, bounds));
  }
  try {
    await knex.raw('select 1');
    firstStartDone();
  } catch (cause) {
    await knex.destroy().catch(() => undefined);
    release();
    const where = kind === 'pglite' ? `PGlite in ${path.resolve(options.dataDir, 'pglite')}` : redactUrl(options.url);
    throw new DatabaseUnavailable(`${where}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  return {
    knex,
    kind,
    close: async () => {
      try {
        await knex.destroy();
      } finally {
        release();
      }
    },
    ...(newSessionClient === undefined ? {} : { newSessionClient }),
  };
}

/**
 * Query parameters libpq and `pg` read a password from (compared in lower case: a spelling `pg`
 * ignores today is masked all the same).
 */
const SECRET_PARAMETERS = new Set(['password', 'sslpassword']);

/**
 * The URL without its passwords, for messages and logs: the user-info password and the `password` and
 * `sslpassword` query parameters (any case) become `***`. Every place that prints a database URL goes
 * through this one function.
 */
export function redactUrl(url: string | undefined): string {
  if (url === undefined) {
    return '(none)';
  }
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') {
      parsed.password = '***';
    }
    const secrets = [...parsed.searchParams.keys()].filter((name) => SECRET_PARAMETERS.has(name.toLowerCase()));
    for (const name of new Set(secrets)) {
      parsed.searchParams.set(name, '***');
    }
    return parsed.toString();
  } catch {
    return '(unparseable database URL)';
  }
}
