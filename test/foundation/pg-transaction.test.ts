import { expect } from 'chai';
import { fixedStatement } from '../../lib/db/fixed-statement.js';
import { inPgTransaction } from '../../lib/db/pg-transaction.js';
import { pgTablePerTest } from './helpers/pg-table-per-test.js';

const INSERT = fixedStatement('pg_transaction_test_insert', 'insert into t (v) values (?::int) returning v');
const BROKEN = fixedStatement('pg_transaction_test_broken', 'select 1 / (?::int - 1)');
const PREPARED = fixedStatement('pg_transaction_test_prepared', 'select name from pg_prepared_statements order by name');

describe('inPgTransaction: a transaction on one node-postgres connection with prepared statements (real PostgreSQL)', function () {
  const fixture = pgTablePerTest();

  it('commits what its statements did and answers their rows, each statement prepared once under its name', async function () {
    const knex = fixture.knex;
    const rows = await inPgTransaction(knex, async (run) => [...(await run(INSERT, [1])), ...(await run(INSERT, [2]))]);
    expect(rows).to.deep.equal([{ v: 1 }, { v: 2 }]);
    expect(await fixture.values()).to.deep.equal([1, 2]);
    // The session's own prepared statements: what ran on the transaction's connection.
    const prepared = await inPgTransaction(knex, (run) => run(PREPARED, []));
    expect(prepared).to.deep.include({ name: INSERT.name });
  });

  it('rolls back and rejects when its work rejects, and leaves the connection out of any transaction', async function () {
    const knex = fixture.knex;
    let refused: unknown;
    await inPgTransaction(knex, async (run) => {
      await run(INSERT, [1]);
      throw new Error('signing failed');
    }).catch((error: unknown) => (refused = error));
    expect((refused as Error).message).to.equal('signing failed');
    expect(await fixture.values()).to.deep.equal([]);
    await inPgTransaction(knex, (run) => run(INSERT, [4]));
    expect(await fixture.values()).to.deep.equal([4]);
  });

  it('rejects, never resolves, when a failed statement was swallowed and PostgreSQL rolls the transaction back at COMMIT', async function () {
    const knex = fixture.knex;
    let refused: unknown;
    const answer = await inPgTransaction(knex, async (run) => {
      await run(INSERT, [1]);
      await run(BROKEN, [1]).catch(() => undefined);
      return 'stored';
    }).catch((error: unknown) => (refused = error));
    expect(answer).to.not.equal('stored');
    expect((refused as Error).message).to.match(/not committed \(ROLLBACK\)/);
    expect(await fixture.values()).to.deep.equal([]);
  });

  it("tells knex's listeners of each answer and error, as knex's own statements do (the push model's outage watch)", async function () {
    const knex = fixture.knex;
    const seen: string[] = [];
    const onResponse = (): void => void seen.push('response');
    const onError = (): void => void seen.push('error');
    knex.on('query-response', onResponse);
    knex.on('query-error', onError);
    try {
      await inPgTransaction(knex, (run) => run(INSERT, [1]));
      expect(seen, 'begin, the insert, commit').to.deep.equal(['response', 'response', 'response']);
      seen.length = 0;
      await inPgTransaction(knex, (run) => run(BROKEN, [1])).catch(() => undefined);
      expect(seen, 'begin, the failed statement, rollback').to.deep.equal(['response', 'error', 'response']);
    } finally {
      knex.removeListener('query-response', onResponse);
      knex.removeListener('query-error', onError);
    }
  });

  it('refuses a statement sent through its runner after the transaction ended (it would run outside it)', async function () {
    const knex = fixture.knex;
    let late: ((value: number) => Promise<unknown>) | undefined;
    await inPgTransaction(knex, async (run) => {
      late = (value) => run(INSERT, [value]);
      await run(INSERT, [1]);
    });
    let refused: unknown;
    await late?.(2).catch((error: unknown) => (refused = error));
    expect((refused as Error).message).to.match(/after its transaction ended/);
    expect(await fixture.values()).to.deep.equal([1]);
  });
});
