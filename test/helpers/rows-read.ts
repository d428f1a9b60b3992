import type { Knex } from 'knex';

/** A statement as knex's `query` event gives it. */
export interface CapturedQuery {
  readonly sql: string;
  readonly bindings: readonly Knex.RawBinding[];
}

/** Runs `body` and returns the statements it sent whose text holds `needle`. */
export async function capturedQueries(knex: Knex, needle: string, body: () => Promise<unknown>): Promise<CapturedQuery[]> {
  const seen: CapturedQuery[] = [];
  const capture = (query: CapturedQuery): void => {
    if (query.sql.includes(needle)) seen.push(query);
  };
  knex.on('query', capture);
  try {
    await body();
  } finally {
    knex.off('query', capture);
  }
  return seen;
}

/** Runs `work` and returns, in order, each statement the database answered meanwhile as `label` names it. */
export async function answeredStatements(knex: Knex, label: (sql: string) => string, work: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (_rows: unknown, query: { sql: string }): void => {
    seen.push(label(query.sql.trim()));
  };
  knex.on('query-response', listener);
  try {
    await work();
  } finally {
    knex.off('query-response', listener);
  }
  return seen;
}

interface PlanNode {
  readonly 'Relation Name'?: string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly 'Rows Removed by Filter'?: number;
  readonly 'Rows Removed by Index Recheck'?: number;
  readonly Plans?: readonly PlanNode[];
}

/**
 * Rows of `table` that PostgreSQL read to run `query` (`explain analyze`): those its scans returned
 * and those they read and filtered out, whatever the plan. A count, not a time: it does not swing with
 * the host's load.
 */
export async function rowsRead(knex: Knex, query: CapturedQuery, table: string): Promise<number> {
  const result = (await knex.raw(`explain (analyze, format json) ${query.sql.replace(/\$\d+/g, '?')}`, [...query.bindings])) as { rows: { 'QUERY PLAN': { Plan: PlanNode }[] }[] };
  const plan = result.rows[0]?.['QUERY PLAN'][0]?.Plan;
  const sum = (node: PlanNode | undefined): number => {
    if (node === undefined) return 0;
    const own =
      node['Relation Name'] === table
        ? ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * (node['Actual Loops'] ?? 1)
        : 0;
    return own + (node.Plans ?? []).reduce((total, child) => total + sum(child), 0);
  };
  return sum(plan);
}

/** `rowsRead` summed over `queries`: the rows of `table` a page's reads read in all. */
export async function totalRowsRead(knex: Knex, queries: readonly CapturedQuery[], table: string): Promise<number> {
  let read = 0;
  for (const query of queries) read += await rowsRead(knex, query, table);
  return read;
}
