import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { AuditLog } from '../../lib/audit/audit-log.js';
import type { AuditEvent } from '../../lib/audit/audit-record.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { forEachDatabase } from '../helpers/databases.js';
import { exportCollected, exportText } from './helpers/sealed-export.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const key = { privateKey, publicKey };

function verdict(stream: string, second: number, outcome: 'PASS' | 'FAIL'): AuditEvent {
  return { stream, at: new Date(Date.UTC(2026, 11, 5, 18, 0, second)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome } };
}

forEachDatabase('audit export from the database', (fixture) => {
  it('the newest record deleted in the database (audit_heads left as it was): the export flags it and does not verify', async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    for (let second = 1; second <= 4; second += 1) await log.append(verdict('agent-tail', second, second === 4 ? 'FAIL' : 'PASS'));
    await log.append(verdict('agent-other', 1, 'PASS'));
    const untouched = await exportCollected(knex, key, {});
    expect(untouched.headMismatches).to.deep.equal([]);
    expect(verifyAuditExport(exportText(untouched), publicKey)).to.include({ valid: true, records: 5 });

    await knex('audit_records').where({ stream: 'agent-tail', seq: 4 }).delete();
    for (const query of [{}, { stream: 'agent-tail' }]) {
      const exported = await exportCollected(knex, key, query);
      expect(exported.headMismatches, JSON.stringify(query)).to.deep.equal(['agent-tail']);
      const result = verifyAuditExport(exportText(exported), publicKey);
      expect(result.valid).to.equal(false);
      expect(result.streams.filter((s) => !s.result.valid).map((s) => [s.stream, s.result.break?.reason])).to.deep.equal([['agent-tail', 'head-mismatch']]);
    }
  });

  it('a stream whose records were all deleted still has its head: listed, flagged, missing from the file', async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    await log.append(verdict('agent-gone', 1, 'FAIL'));
    await knex('audit_records').where({ stream: 'agent-gone' }).delete();
    const exported = await exportCollected(knex, key, { stream: 'agent-gone' });
    expect(exported.headMismatches).to.deep.equal(['agent-gone']);
    const result = verifyAuditExport(exportText(exported), publicKey);
    expect(result.streams.map((s) => [s.stream, s.result.break?.reason])).to.deep.equal([['agent-gone', 'head-mismatch']]);
  });

  it('--since goes on by seq from the first record at or after the time: an append that waited for the head lock (later seq, earlier `at`) is kept', async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    // The round writer takes `at` before the head lock: a writer that waited behind another commits
    // after it with an earlier time. Appended here in that order: seq 2 at second 3, seq 3 at second 2.
    for (const second of [1, 3, 2, 4]) await log.append(verdict('agent-since', second, 'PASS'));
    const since = new Date(Date.UTC(2026, 11, 5, 18, 0, 2, 500)).toISOString();
    const { records } = await exportCollected(knex, key, { stream: 'agent-since', since });
    expect(records.map((r) => [r.seq, r.at.slice(17, 19)])).to.deep.equal([
      [1, '01'],
      [2, '03'],
      [3, '02'],
      [4, '04'],
    ]);
    const exported = await exportCollected(knex, key, { since });
    expect(exported.manifest.manifest.streams.find((s) => s.stream === 'agent-since')).to.deep.include({ fromSeq: 1, lastSeq: 4 });
    const result = verifyAuditExport(exportText(exported), publicKey);
    const broken = result.streams.filter((s) => !s.result.valid).map((s) => `${s.stream}: ${s.result.break?.message}`);
    expect(broken.filter((line) => line.startsWith('agent-since')), 'an untouched log reads as tampered').to.deep.equal([]);
    // A stream with nothing since the time still gives its last record, anchored by the one before it.
    const later = await exportCollected(knex, key, { stream: 'agent-since', since: new Date(Date.UTC(2026, 11, 6)).toISOString() });
    expect(later.records.map((r) => r.seq)).to.deep.equal([3, 4]);
    expect(later.manifest.manifest.streams).to.deep.equal([{ stream: 'agent-since', fromSeq: 3, lastSeq: 4, lastHash: (records[3] as { hash: string }).hash }]);
    expect(verifyAuditExport(exportText(later), publicKey)).to.include({ valid: true, records: 2 });
  });

  it('--since: the first records at or after the time deleted in the database (a FAIL verdict) are found, as in a complete export', async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    for (let second = 1; second <= 5; second += 1) await log.append(verdict('agent-cut', second, second === 3 ? 'FAIL' : 'PASS'));
    const since = new Date(Date.UTC(2026, 11, 5, 18, 0, 3)).toISOString();
    const untouched = await exportCollected(knex, key, { stream: 'agent-cut', since });
    expect(verifyAuditExport(exportText(untouched), publicKey)).to.include({ valid: true });
    const reasons = async (): Promise<unknown[]> => {
      const result = verifyAuditExport(exportText(await exportCollected(knex, key, { stream: 'agent-cut', since })), publicKey);
      return result.streams.map((s) => s.result.break?.reason);
    };
    // The FAIL, the first record since the time: the record before it (seq 2) is exported too, so the gap shows.
    await knex('audit_records').where({ stream: 'agent-cut', seq: 3 }).delete();
    expect(await reasons()).to.deep.equal(['sequence-gap']);
    // With every record before it as well: the stream no longer starts at seq 1.
    await knex('audit_records').where({ stream: 'agent-cut' }).where('seq', '<', 3).delete();
    expect(await reasons()).to.deep.equal(['truncated']);
  });

  it('--since: a stream with nothing since the time still exports its last record (and its anchor), so an `at` edited to hide a FAIL before the time is found', async () => {
    const knex = fixture.database.knex;
    const log = new AuditLog(knex, key);
    for (let second = 1; second <= 5; second += 1) await log.append(verdict('agent-quiet', second, second === 5 ? 'FAIL' : 'PASS'));
    const query = { stream: 'agent-quiet', since: new Date(Date.UTC(2026, 11, 5, 18, 0, 5, 500)).toISOString() };
    const untouched = await exportCollected(knex, key, query);
    expect(untouched.records.map((r) => r.seq)).to.deep.equal([4, 5]);
    expect(untouched.manifest.manifest.streams).to.deep.equal([{ stream: 'agent-quiet', fromSeq: 4, lastSeq: 5, lastHash: (untouched.records[1] as { hash: string }).hash }]);
    expect(verifyAuditExport(exportText(untouched), publicKey)).to.include({ valid: true, records: 2 });

    // Someone with write access to the database moves the FAIL (seq 5, 18:00:05) before a time it was after.
    await knex('audit_records').where({ stream: 'agent-quiet', seq: 5 }).update({ at: new Date(Date.UTC(2026, 11, 5, 18, 0, 1)).toISOString() });
    const since = { ...query, since: new Date(Date.UTC(2026, 11, 5, 18, 0, 4, 500)).toISOString() };
    const complete = verifyAuditExport(exportText(await exportCollected(knex, key, { stream: 'agent-quiet' })), publicKey);
    expect(complete.streams.map((s) => s.result.break?.reason)).to.deep.equal(['hash-mismatch']);
    const partial = verifyAuditExport(exportText(await exportCollected(knex, key, since)), publicKey);
    expect(partial.valid, 'the --since export read as "nothing since" with the edited FAIL left out').to.equal(false);
    expect(partial.streams.map((s) => [s.result.break?.reason, s.breakLine])).to.deep.equal([['hash-mismatch', 2]]);
  });
}, { migrate: true });
