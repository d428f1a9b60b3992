import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import knexFactory from 'knex';
import { pino } from 'pino';
import { migrateLatest } from '../../lib/db/migrate.js';
import { HistoryPruner } from '../../lib/verifier/history-pruner.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { forEachDatabase } from '../helpers/databases.js';
import { createTestSchema } from './helpers/verifier-fixture.js';

/** History rows of `agentId`: each outcome attempted `daysAgo` days ago. */
async function historyRows(knex: Knex, agentId: string, rows: readonly (readonly [outcome: string, daysAgo: number])[]): Promise<void> {
  for (const [outcome, daysAgo] of rows) {
    await knex.raw(
      `insert into verifier_attestation_history (agent_id, verifier_id, owner, attempted_at, outcome, operational_state, attestation_count)
       values (?, 'default', 'o', now() - make_interval(days => ?), ?, 3, 0)`,
      [agentId, daysAgo, outcome],
    );
  }
}

async function remaining(knex: Knex, agentId: string): Promise<string[]> {
  const rows = (await knex('verifier_attestation_history').where({ agent_id: agentId }).orderBy('id').select('outcome', knex.raw('extract(day from now() - attempted_at)::int as age'))) as {
    outcome: string;
    age: number;
  }[];
  return rows.map(({ outcome, age }) => `${outcome}@${age}`);
}

const OLD_AND_NEW = [
  ['pass', 40],
  ['retry', 40],
  ['fail', 40],
  ['pass', 31],
  ['pass', 29],
  ['fail', 2],
  ['pass', 0],
] as const;

forEachDatabase(
  'verifier history retention',
  (fixture) => {
    it('deletes passing and retried rounds older than the retention, in batches, and keeps every failure', async function () {
      const { knex } = fixture.database;
      await historyRows(knex, 'retained-agent', OLD_AND_NEW);
      const pruner = new HistoryPruner(knex, { retentionDays: 30, batch: 2, log: pino({ level: 'silent' }) });
      expect(await pruner.pruneOnce()).to.equal(3);
      expect(await remaining(knex, 'retained-agent')).to.deep.equal(['fail@40', 'pass@29', 'fail@2', 'pass@0']);
      expect(await pruner.pruneOnce(), 'nothing more to delete').to.equal(0);
    });
  },
  { migrate: true },
);

describe('startVerifier: history retention (real PostgreSQL)', function () {
  this.timeout(30_000);

  async function withVerifier(historyRetentionDays: number | undefined, check: (knex: Knex) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-history-retention-'));
    const schema = await createTestSchema();
    const knex = knexFactory({ client: 'pg', connection: schema.url, pool: { min: 0, max: 1 } });
    try {
      await migrateLatest(knex);
      await historyRows(knex, 'kept-agent', OLD_AND_NEW);
      const verifier = await startVerifier(
        { dataDir: dir, databaseUrl: schema.url, ...(historyRetentionDays === undefined ? {} : { historyRetentionDays }) },
        { inProcessForTests: true },
      );
      try {
        await check(knex);
      } finally {
        await verifier.close();
      }
    } finally {
      await knex.destroy();
      await schema.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('with historyRetentionDays, prunes at start', async function () {
    await withVerifier(30, async (knex) => {
      await pollUntil({ timeoutMs: 10_000, intervalMs: 100 }, 'the old passes deleted', async () => (await remaining(knex, 'kept-agent')).length === 4);
      expect(await remaining(knex, 'kept-agent')).to.deep.equal(['fail@40', 'pass@29', 'fail@2', 'pass@0']);
    });
  });

  it('keeps every row by default', async function () {
    await withVerifier(undefined, async (knex) => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await remaining(knex, 'kept-agent')).to.have.length(OLD_AND_NEW.length);
    });
  });
});
