import { expect } from 'chai';
import type { Knex } from 'knex';
import { CLAIM_ATTESTED_MANY, TOKEN_ACCESS_MANY } from '../../lib/broker/broker-statements.js';
import type { FixedStatement } from '../../lib/db/fixed-statement.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/** Rows in each table the batches look up: enough that hashing the whole table is never the cheap plan. */
const ROWS = 20_000;

/** The tables a scan (not a lookup by key) of which appears in `plan`. */
function scannedTables(plan: unknown): string[] {
  const node = plan as { 'Node Type'?: string; 'Relation Name'?: string; Plans?: unknown[] };
  const own = node['Node Type'] === 'Seq Scan' && node['Relation Name'] !== undefined ? [node['Relation Name']] : [];
  return [...own, ...(node.Plans ?? []).flatMap(scannedTables)];
}

/**
 * The batch statements of `/attest` claims and releases look each item up by key. A join to
 * `jsonb_to_recordset` is planned for the 100 rows the planner assumes it returns: a hash of the whole
 * sessions table (every session of the last quarter hour) for each batch, however small.
 */
describe('broker: the claim and release batches look rows up by key (PostgreSQL)', function () {
  let opened: OpenedDatabase;
  let knex: Knex;

  const plannedScans = async (statement: FixedStatement, binding: unknown[]): Promise<string[]> => {
    const result = (await knex.raw(`explain (format json) ${statement.knexSql}`, [JSON.stringify(binding)])) as { rows: { 'QUERY PLAN': { Plan: unknown }[] }[] };
    return scannedTables(result.rows[0]?.['QUERY PLAN'][0]?.Plan);
  };

  before(async function () {
    this.timeout(120_000);
    opened = await openMigratedTestSchema();
    knex = opened.database.knex;
    await knex.raw(`insert into broker_sessions (id, nonce, tee, expires_at) select 'session-' || g, 'nonce', 'tpm', 0 from generate_series(1, ?) g`, [ROWS]);
    await knex.raw(`insert into broker_nodes (agent_id, tpm_policy, groups, updated_at) select 'node-' || g, '{}', '[]', 0 from generate_series(1, ?) g`, [ROWS]);
    await knex.raw(`insert into broker_revocations (agent_id, revoked_at, reason) select 'node-' || g, 0, 'test' from generate_series(1, ?) g`, [ROWS]);
    await knex.raw(`insert into broker_resources (repository, type, tag, sealed, policy, updated_at) select 'r', 't', 'tag-' || g, 'x', '{}', 0 from generate_series(1, ?) g`, [ROWS]);
    // These tables only: a bare `analyze` reads every schema of the shared test database (the suite's other workers').
    for (const table of ['broker_sessions', 'broker_nodes', 'broker_revocations', 'broker_resources']) await knex.raw('analyze ??', [table]);
  });

  after(async function () {
    await opened?.dispose();
  });

  it('a batch of claims reads the sessions, nodes and revocations by key', async function () {
    const claim = { i: 0, id: 'session-7', nonce: 'n', tee: 'tpm', expires_at: 1, agent_id: 'node-7', tee_pubkey: '{}', attested_at: 1, ak_tpm: null, trust_vector: null, node_digest: null, session_issued_at: 1 };
    expect(await plannedScans(CLAIM_ATTESTED_MANY, [claim])).to.deep.equal([]);
  });

  it('a batch of releases reads the resources, nodes and revocations by key', async function () {
    expect(await plannedScans(TOKEN_ACCESS_MANY, [{ i: 0, repository: 'r', type: 't', tag: 'tag-7', agent_id: 'node-7' }])).to.deep.equal([]);
  });
});
