import { createHash } from 'node:crypto';
import type { Knex } from 'knex';

/** A statement's parameter value. */
export type Binding = string | number | null;

/**
 * A hot path's statement, fixed at load (no query building per call): knex's `?` form, and the `$n`
 * form PostgreSQL prepares once per pooled connection under `name` (parse and plan were about half of
 * the backend's CPU per statement, and knex's own handling of a statement costs more client CPU than
 * node-postgres's).
 */
export interface FixedStatement {
  readonly name: string;
  readonly knexSql: string;
  readonly pgSql: string;
}

/** PostgreSQL's longest identifier (NAMEDATALEN - 1): a longer statement name is cut, its hash with it. */
const MAX_STATEMENT_NAME_BYTES = 63;

/**
 * `knexSql` must hold `?` only as placeholders (no `?` operators, no `??` identifiers). The prepared
 * name is `baseName` and the first 8 hex digits of the SHA-256 of the SQL text: two versions of a
 * statement (a rolling upgrade behind a pooler that shares server sessions) never share a name, so a
 * Bind never runs another version's SQL.
 */
export function fixedStatement(baseName: string, knexSql: string): FixedStatement {
  let index = 0;
  const pgSql = knexSql.replace(/\?/g, () => `$${(index += 1)}`);
  const name = `${baseName}_${createHash('sha256').update(pgSql).digest('hex').slice(0, 8)}`;
  if (Buffer.byteLength(name) > MAX_STATEMENT_NAME_BYTES) {
    throw new Error(`fixed statement name ${name} is longer than PostgreSQL's ${MAX_STATEMENT_NAME_BYTES} bytes`);
  }
  return { name, knexSql, pgSql };
}

/** The part of a pooled node-postgres connection the prepared path and `inPgTransaction` use. */
export interface PgConnection {
  query(config: { text: string; name?: string; values?: readonly Binding[] }): Promise<{ rows: unknown[]; command: string }>;
  end(): unknown;
}

/**
 * The rows of a fixed statement: on PostgreSQL with `prepared`, run as the named prepared statement on
 * a pooled connection — inside a knex transaction `knex` is the transaction, whose client hands out the
 * transaction's own connection; else (PGlite, or unprepared) through knex raw.
 */
export async function runFixedStatement(knex: Knex | Knex.Transaction, prepared: boolean, statement: FixedStatement, bindings: readonly Binding[]): Promise<unknown[]> {
  if (!prepared) {
    const result = (await knex.raw(statement.knexSql, bindings)) as { rows: unknown[] } | unknown[];
    return Array.isArray(result) ? result : result.rows;
  }
  const connection = (await knex.client.acquireConnection()) as PgConnection;
  try {
    return (await connection.query({ name: statement.name, text: statement.pgSql, values: bindings })).rows;
  } finally {
    await knex.client.releaseConnection(connection);
  }
}

/** Runs fixed statements in one place (a transaction, or the pool): resolves to the statement's rows. */
export type Statements = (statement: FixedStatement, bindings: readonly Binding[]) => Promise<unknown[]>;

/** `runFixedStatement` on `knex` (a transaction or the pool), as `Statements`. */
export function statementsOn(knex: Knex | Knex.Transaction, prepared: boolean): Statements {
  return (statement, bindings) => runFixedStatement(knex, prepared, statement, bindings);
}
