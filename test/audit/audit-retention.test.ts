import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { signAuditCheckpoint } from '../../lib/audit/audit-checkpoint.js';
import { auditCheckpointFromRow, auditCheckpointRow, type AuditCheckpointRow } from '../../lib/audit/audit-checkpoint-rows.js';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { formatAuditManifestLine, sealAuditManifest } from '../../lib/audit/audit-manifest.js';
import { auditRecordFromRow, type AuditRecordRow } from '../../lib/audit/audit-record-pages.js';
import { auditRecordHash, type AuditEvent } from '../../lib/audit/audit-record.js';
import { verifyAuditExport, type AuditExportResult } from '../../lib/audit/verify-audit-export.js';
import { AuditPruner } from '../../lib/verifier/audit-pruner.js';
import { forEachDatabase } from '../helpers/databases.js';
import { exportWithCheckpoints } from './helpers/pruned-export.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };
const DAY_MS = 86_400_000;
const silent = pino({ level: 'silent' });

type Entry = readonly [kind: 'add' | 'pass' | 'fail', daysAgo: number];

/** `agent-r`'s history: an admin action, old passes, an old failure, old passes, then two recent passes. */
const MIXED: readonly Entry[] = [
  ['add', 40],
  ['pass', 40],
  ['pass', 40],
  ['pass', 39],
  ['pass', 39],
  ['fail', 38],
  ['pass', 38],
  ['pass', 37],
  ['pass', 1],
  ['pass', 0],
];

function event(stream: string, [kind, daysAgo]: Entry, index: number): AuditEvent {
  const at = new Date(Date.now() - daysAgo * DAY_MS + index).toISOString();
  if (kind === 'add') return { stream, at, actor: 'cert:admin', action: 'agent.add', agentId: stream, details: { status: 200 } };
  return { stream, at, actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome: kind, event_ids: [], failures: [] } };
}

async function appendAll(log: AuditLog, stream: string, entries: readonly Entry[]): Promise<void> {
  for (const [index, entry] of entries.entries()) await log.append(event(stream, entry, index));
}

async function seqs(knex: Knex, stream: string): Promise<number[]> {
  return ((await knex('audit_records').where({ stream }).orderBy('seq').select('seq')) as { seq: string }[]).map((row) => Number(row.seq));
}

async function checkpoints(knex: Knex, stream: string): Promise<AuditCheckpointRow[]> {
  return (await knex('audit_checkpoints').where({ stream }).orderBy('to_seq').select('*')) as AuditCheckpointRow[];
}

function pruner(knex: Knex, batch = 2): AuditPruner {
  return new AuditPruner(knex, { retentionDays: 30, key, auditLog: new AuditLog(knex, key), actor: 'test', log: silent, batch });
}

function breaks(result: AuditExportResult): string[][] {
  return result.streams.filter((s) => !s.result.valid).map((s) => [s.stream, s.result.break?.reason ?? '']);
}

forEachDatabase(
  'audit retention',
  (fixture) => {
    it('prunes the old passing verdicts only, a signed checkpoint for each run; export then verify passes (complete, --agent, --since, any batch size)', async function () {
      const { knex } = fixture.database;
      const log = new AuditLog(knex, key);
      await appendAll(log, 'agent-r', MIXED);
      await appendAll(log, 'agent-p', [['pass', 40], ['pass', 40], ['pass', 40], ['pass', 35]]);
      const summary = await pruner(knex).pruneOnce();
      expect(summary).to.include({ streams: 2, records: 9 });
      // The admin action, the failure, the recent passes and each head stay.
      expect(await seqs(knex, 'agent-r')).to.deep.equal([1, 6, 9, 10]);
      expect(await seqs(knex, 'agent-p')).to.deep.equal([4]);
      expect((await checkpoints(knex, 'agent-r')).map((row) => [Number(row.from_seq), Number(row.to_seq)])).to.deep.equal([
        [2, 5],
        [7, 8],
      ]);
      expect((await checkpoints(knex, 'agent-p')).map((row) => [Number(row.from_seq), Number(row.to_seq)])).to.deep.equal([[1, 3]]);
      const fleet = (await knex('audit_records').where({ stream: 'fleet' }).select('*')) as { action: string; actor: string; details: string }[];
      expect(fleet.map((row) => [row.action, row.actor])).to.deep.equal([['audit.prune', 'verifier:test']]);
      expect(JSON.parse(fleet[0]?.details ?? '{}')).to.deep.include({ streams: 2, records: 9, cutoff: summary.cutoff, retention_days: 30 });

      const since = new Date(Date.now() - 2 * DAY_MS).toISOString();
      for (const [query, batch] of [[{}, undefined], [{}, 1], [{ stream: 'agent-r' }, 2], [{ since }, undefined], [{ since }, 1], [{ stream: 'agent-p', since }, 1]] as const) {
        const text = await exportWithCheckpoints(knex, key, query, batch);
        const result = verifyAuditExport(text, publicKey);
        expect(result.valid, `${JSON.stringify(query)} batch ${batch}: ${JSON.stringify(result.streams)}`).to.equal(true);
      }
      const whole = verifyAuditExport(await exportWithCheckpoints(knex, key, { stream: 'agent-r' }), publicKey);
      expect(whole.streams[0]?.span).to.deep.include({ fromSeq: 1, lastSeq: 10, pruned: 6, checkpoints: 2 });
      expect(whole.records).to.equal(4);
      expect((await pruner(knex).pruneOnce()).records, 'nothing more to prune').to.equal(0);
      expect(await knex('audit_records').where({ stream: 'fleet' }).count({ n: '*' }).first()).to.deep.equal({ n: fixture.kind === 'postgres' ? '1' : 1 });
    });

    it("a later run continues the stream's last checkpoint: one checkpoint for the whole run, still verifying", async function () {
      const { knex } = fixture.database;
      await appendAll(new AuditLog(knex, key), 'agent-grow', [['pass', 40], ['pass', 40], ['pass', 20], ['pass', 0]]);
      expect((await pruner(knex).pruneOnce()).records).to.equal(2);
      const later = new AuditPruner(knex, { retentionDays: 10, key, auditLog: new AuditLog(knex, key), actor: 'test', log: silent, batch: 2 });
      expect((await later.pruneOnce()).records).to.equal(1);
      expect(await seqs(knex, 'agent-grow')).to.deep.equal([4]);
      expect((await checkpoints(knex, 'agent-grow')).map((row) => [Number(row.from_seq), Number(row.to_seq)])).to.deep.equal([[1, 3]]);
      expect(verifyAuditExport(await exportWithCheckpoints(knex, key, { stream: 'agent-grow' }), publicKey).valid).to.equal(true);
    });

    it('a run of kept records longer than a batch is passed over: the passes after it are pruned', async function () {
      const { knex } = fixture.database;
      const log = new AuditLog(knex, key);
      await appendAll(log, 'agent-flap', [['fail', 40], ['fail', 40], ['fail', 40], ['fail', 40], ['fail', 40], ['pass', 40], ['pass', 40], ['pass', 0]]);
      expect((await pruner(knex, 2).pruneOnce()).records).to.equal(2);
      expect(await seqs(knex, 'agent-flap')).to.deep.equal([1, 2, 3, 4, 5, 8]);
      expect(verifyAuditExport(await exportWithCheckpoints(knex, key, { stream: 'agent-flap' }), publicKey).valid).to.equal(true);
    });

    describe('a pruned stream whose checkpoints were tampered with does not verify, naming the stream', function () {
      let stream: string;
      let n = 0;
      beforeEach(async function () {
        n += 1;
        stream = `agent-t${n}`;
        await appendAll(new AuditLog(fixture.database.knex, key), stream, MIXED);
        await appendAll(new AuditLog(fixture.database.knex, key), `${stream}-other`, MIXED);
        await pruner(fixture.database.knex).pruneOnce();
      });

      async function verifyStream(): Promise<string[][]> {
        return breaks(verifyAuditExport(await exportWithCheckpoints(fixture.database.knex, key, { stream }), publicKey));
      }

      it('a checkpoint deleted: the records it stood for read as deleted without one', async function () {
        await fixture.database.knex('audit_checkpoints').where({ stream, from_seq: 7 }).delete();
        expect(await verifyStream()).to.deep.equal([[stream, 'sequence-gap']]);
      });

      it('the first checkpoint deleted with a stream starting after seq 1: truncated', async function () {
        await fixture.database.knex('audit_records').where({ stream, seq: 1 }).delete();
        await fixture.database.knex('audit_checkpoints').where({ stream, from_seq: 2 }).delete();
        expect(await verifyStream()).to.deep.equal([[stream, 'truncated']]);
      });

      it('a kept record (the failure) deleted between two checkpoints', async function () {
        await fixture.database.knex('audit_records').where({ stream, seq: 6 }).delete();
        expect(await verifyStream()).to.deep.equal([[stream, 'sequence-gap']]);
      });

      it('a record deleted that retention did not delete, with no checkpoint', async function () {
        await fixture.database.knex('audit_records').where({ stream, seq: 9 }).delete();
        expect(await verifyStream()).to.deep.equal([[stream, 'sequence-gap']]);
      });

      it('a forged checkpoint (signed by another key) in place of the genuine one', async function () {
        const other = generateKeyPairSync('ed25519').privateKey;
        const [row] = await checkpoints(fixture.database.knex, stream);
        const forged = signAuditCheckpoint(auditCheckpointFromRow(row as AuditCheckpointRow), other);
        await fixture.database.knex('audit_checkpoints').where({ stream, from_seq: 2 }).update({ signature: forged.signature });
        expect(await verifyStream()).to.deep.equal([[stream, 'bad-checkpoint']]);
      });

      it('a checkpoint whose hash was edited', async function () {
        await fixture.database.knex('audit_checkpoints').where({ stream, from_seq: 7 }).update({ hash: 'f'.repeat(64) });
        expect(await verifyStream()).to.deep.equal([[stream, 'bad-checkpoint']]);
      });

      it('a checkpoint signed by the key but with the wrong hash: the next record does not link to it', async function () {
        const [, row] = await checkpoints(fixture.database.knex, stream);
        const wrong = signAuditCheckpoint({ ...auditCheckpointFromRow(row as AuditCheckpointRow), hash: 'e'.repeat(64) }, privateKey);
        await fixture.database.knex('audit_checkpoints').where({ stream, from_seq: 7 }).update(auditCheckpointRow(wrong));
        expect(await verifyStream()).to.deep.equal([[stream, 'broken-link']]);
      });

      it("another stream's checkpoint in place of this one's", async function () {
        const knex = fixture.database.knex;
        const [theirs] = await checkpoints(knex, `${stream}-other`);
        await knex('audit_checkpoints').where({ stream, from_seq: 2 }).delete();
        await knex('audit_checkpoints').insert({ ...(theirs as AuditCheckpointRow), stream });
        expect(await verifyStream()).to.deep.equal([[stream, 'bad-checkpoint']]);
      });
    });

    it('a stored chain that does not hold is not pruned: no checkpoint is signed over it', async function () {
      const { knex } = fixture.database;
      await appendAll(new AuditLog(knex, key), 'agent-edited', [['pass', 40], ['pass', 40], ['pass', 40], ['pass', 0]]);
      await knex('audit_records').where({ stream: 'agent-edited', seq: 2 }).update({ details: JSON.stringify({ outcome: 'pass', event_ids: [], failures: [], edited: true }) });
      await pruner(knex).pruneOnce();
      expect(await seqs(knex, 'agent-edited')).to.deep.equal([1, 2, 3, 4]);
      expect(await checkpoints(knex, 'agent-edited')).to.deep.equal([]);
    });

    it('a failure edited to a pass, the chain re-hashed to its head, is not pruned: links hold but the signatures do not', async function () {
      const { knex } = fixture.database;
      const stream = 'agent-laundered';
      await appendAll(new AuditLog(knex, key), stream, [['pass', 40], ['fail', 40], ['pass', 40], ['pass', 0]]);
      const rows = (await knex('audit_records').where({ stream }).orderBy('seq').select('*')) as AuditRecordRow[];
      let prevHash = rows[0]?.hash ?? '';
      for (const row of rows.slice(1)) {
        const record = auditRecordFromRow(row);
        const details = record.details['outcome'] === 'fail' ? { ...record.details, outcome: 'pass' } : record.details;
        const hash = auditRecordHash({ ...record, details }, record.seq, prevHash);
        await knex('audit_records').where({ stream, seq: record.seq }).update({ details: JSON.stringify(details), prev_hash: prevHash, hash });
        prevHash = hash;
      }
      await knex('audit_heads').where({ stream }).update({ hash: prevHash });
      await pruner(knex).pruneOnce();
      expect(await seqs(knex, stream), 'the edited failure is kept for the export to show').to.deep.equal([1, 2, 3, 4]);
      expect(await checkpoints(knex, stream)).to.deep.equal([]);
    });

    it("a stream may not end with a checkpoint: its kept last record removed, the manifest sealed to the checkpoint's end, is truncated", async function () {
      const { knex } = fixture.database;
      const stream = 'agent-end';
      await appendAll(new AuditLog(knex, key), stream, [['pass', 40], ['pass', 40], ['pass', 40], ['pass', 0]]);
      await pruner(knex).pruneOnce();
      const [checkpointLine] = (await exportWithCheckpoints(knex, key, { stream })).split('\n');
      const checkpoint = JSON.parse(checkpointLine ?? '{}') as { checkpoint: { to_seq: number; hash: string } };
      const manifest = sealAuditManifest({ agent: stream, since: null, streams: [{ stream, fromSeq: 1, lastSeq: checkpoint.checkpoint.to_seq, lastHash: checkpoint.checkpoint.hash }] }, privateKey);
      const result = verifyAuditExport(`${checkpointLine}\n${formatAuditManifestLine(manifest)}`, publicKey);
      expect(breaks(result)).to.deep.equal([[stream, 'truncated']]);
    });

    it('a forged checkpoint over a deleted failure is not continued: the pruner signs no checkpoint that spans it', async function () {
      const { knex } = fixture.database;
      const stream = 'agent-spliced';
      await appendAll(new AuditLog(knex, key), stream, [['pass', 40], ['pass', 40], ['fail', 40], ['pass', 20], ['pass', 20], ['pass', 0]]);
      await pruner(knex).pruneOnce();
      // Someone with the database but not the key: the failure deleted, the checkpoint before it widened over it.
      const [genuine] = await checkpoints(knex, stream);
      const failure = (await knex('audit_records').where({ stream, seq: 3 }).first()) as AuditRecordRow;
      await knex('audit_records').where({ stream, seq: 3 }).delete();
      await knex('audit_checkpoints').where({ stream }).delete();
      await knex('audit_checkpoints').insert({ ...(genuine as AuditCheckpointRow), to_seq: 3, hash: failure.hash });
      const later = new AuditPruner(knex, { retentionDays: 10, key, auditLog: new AuditLog(knex, key), actor: 'test', log: silent, batch: 2 });
      expect((await later.pruneOnce()).records).to.equal(0);
      expect(await seqs(knex, stream)).to.deep.equal([4, 5, 6]);
      expect(breaks(verifyAuditExport(await exportWithCheckpoints(knex, key, { stream }), publicKey))).to.deep.equal([[stream, 'bad-checkpoint']]);
    });

    it('two pruners at once, while the stream is appended to: nothing corrupted, the chain goes on and verifies', async function () {
      const { knex } = fixture.database;
      const log = new AuditLog(knex, key);
      const old: Entry[] = Array.from({ length: 60 }, (_, index) => (index % 13 === 5 ? ['fail', 40] : ['pass', 40]) as Entry);
      for (const stream of ['agent-c1', 'agent-c2', 'agent-c3']) await appendAll(log, stream, old);
      const appends = (async () => {
        for (let index = 0; index < 20; index += 1) await log.append(event('agent-c1', ['pass', 0], index));
      })();
      const [first, second] = await Promise.all([pruner(knex, 3).pruneOnce(), pruner(knex, 3).pruneOnce(), appends]);
      const failures = old.filter(([kind]) => kind === 'fail').length;
      // Each old pass but the last record read, once in all: the head of each stream (an old pass, for c2 and c3) stays.
      const left = await Promise.all(['agent-c1', 'agent-c2', 'agent-c3'].map((stream) => seqs(knex, stream)));
      expect(left[0]?.slice(-20)).to.deep.equal(Array.from({ length: 20 }, (_, index) => 61 + index));
      for (const stream of left.slice(1)) expect(stream).to.include(60);
      const kept = left.reduce((sum, stream) => sum + stream.length, 0);
      expect(first.records + second.records + kept, "every record deleted once or kept").to.equal(3 * 60 + 20);
      expect(kept).to.be.at.least(3 * failures + 20 + 2);
      for (const stream of ['agent-c1', 'agent-c2', 'agent-c3']) {
        const result = verifyAuditExport(await exportWithCheckpoints(knex, key, { stream }), publicKey);
        expect(result.valid, JSON.stringify(breaks(result))).to.equal(true);
      }
    });
  },
  { migrate: true },
);
