import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { startVerifier } from '../../lib/verifier/verifier-server.js';
import { createTestSchema } from './helpers/verifier-fixture.js';

const DAY_MS = 86_400_000;

async function seqs(knex: Knex, stream: string): Promise<number[]> {
  return ((await knex('audit_records').where({ stream }).orderBy('seq').select('seq')) as { seq: string }[]).map((row) => Number(row.seq));
}

describe('startVerifier: audit retention (real PostgreSQL)', function () {
  this.timeout(30_000);

  async function withVerifier(auditRetentionDays: number | undefined, check: (knex: Knex) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-retention-'));
    const schema = await createTestSchema();
    const knex = knexFactory({ client: 'pg', connection: schema.url, pool: { min: 0, max: 1 } });
    try {
      await migrateLatest(knex);
      // The verifier's own key (made here first, read by it at start): its checkpoints and this log's records verify together.
      const log = new AuditLog(knex, loadOrCreateAuditKey(dir));
      for (const [outcome, daysAgo] of [['pass', 40], ['fail', 40], ['pass', 40], ['pass', 0]] as const) {
        await log.append({ stream: 'kept-agent', at: new Date(Date.now() - daysAgo * DAY_MS).toISOString(), actor: 'verifier:old', action: 'verdict', agentId: 'kept-agent', details: { outcome } });
      }
      const verifier = await startVerifier({ dataDir: dir, databaseUrl: schema.url, ...(auditRetentionDays === undefined ? {} : { auditRetentionDays }) }, { inProcessForTests: true });
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

  it('with auditRetentionDays, prunes at start and records it in the fleet stream', async function () {
    await withVerifier(30, async (knex) => {
      await pollUntil({ timeoutMs: 10_000, intervalMs: 100 }, 'the old passes deleted', async () => (await seqs(knex, 'kept-agent')).length === 2);
      expect(await seqs(knex, 'kept-agent')).to.deep.equal([2, 4]);
      await pollUntil({ timeoutMs: 10_000, intervalMs: 100 }, 'the prune recorded', async () => (await knex('audit_records').where({ stream: 'fleet', action: 'audit.prune' })).length === 1);
    });
  });

  it('keeps every record by default', async function () {
    await withVerifier(undefined, async (knex) => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await seqs(knex, 'kept-agent')).to.deep.equal([1, 2, 3, 4]);
    });
  });
});
