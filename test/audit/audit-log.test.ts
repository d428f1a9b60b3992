import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { verifyAuditChain } from '../../lib/audit/audit-chain.js';
import { AuditLog } from '../../lib/audit/audit-log.js';
import type { AuditEvent } from '../../lib/audit/audit-record.js';
import { AUDIT_PRIVATE_KEY_FILE, loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { runCli } from '../helpers/cli-runner.js';
import { forEachDatabase } from '../helpers/databases.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';
import { exportCollected } from './helpers/sealed-export.js';

function verdict(agentId: string, second: number, outcome: 'PASS' | 'FAIL'): AuditEvent {
  return {
    stream: agentId,
    at: new Date(Date.UTC(2026, 11, 2, 18, 0, second)).toISOString(),
    actor: 'verifier:test',
    action: 'verdict',
    agentId,
    details: { outcome, context: outcome === 'FAIL' ? 'cmdline "ro quiet\u0000"' : null },
  };
}

describe('audit log', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses an audit signing key file that group or others may read', function () {
    const keyDir = mkdtempSync(path.join(dir, 'key-'));
    loadOrCreateAuditKey(keyDir);
    chmodSync(path.join(keyDir, AUDIT_PRIVATE_KEY_FILE), 0o604);
    expect(() => loadOrCreateAuditKey(keyDir)).to.throw(PkiError, 'its permissions 0604 let group or others use it');
  });

  forEachDatabase('audit log store', (fixture) => {
    it('concurrent appends to one stream form one unbroken chain; streams are separate', async function () {
      const key = loadOrCreateAuditKey(dir);
      const log = new AuditLog(fixture.database.knex, key);
      await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(verdict(i % 2 === 0 ? 'agent-a' : 'agent-b', i, i === 19 ? 'FAIL' : 'PASS'))));
      const { records: a } = await exportCollected(fixture.database.knex, key, { stream: 'agent-a' });
      const { records: b } = await exportCollected(fixture.database.knex, key, { stream: 'agent-b' });
      expect(a.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(verifyAuditChain(a, key.publicKey).valid).to.equal(true);
      expect(verifyAuditChain(b, key.publicKey).valid).to.equal(true);
      expect(b.find((r) => r.details['outcome'] === 'FAIL')?.details).to.deep.equal({ outcome: 'FAIL', context: 'cmdline "ro quiet\u0000"' });
      // --since: from the record before the first one (by seq) at or after the time, every later seq whatever its time (seq is commit order).
      const at = verdict('x', 10, 'PASS').at;
      const { records: since } = await exportCollected(fixture.database.knex, key, { stream: 'agent-a', since: at });
      expect(since.map((r) => r.seq)).to.deep.equal(a.slice(Math.max(a.findIndex((r) => r.at >= at) - 1, 0)).map((r) => r.seq));
      expect(since.filter((r) => r.at >= at)).to.have.length(5);
    });
  }, { migrate: true });

  it('ironlime audit export is reproducible and audit verify names the record that breaks the chain', async function () {
    // Several CLI processes, each a Node start: minutes on a loaded host, not the default 60 s.
    this.timeout(180_000);
    const dataDir = path.join(dir, 'verifier');
    await seedPgliteFolder(dataDir);
    const database = await createDatabase({ dataDir });
    try {
      await migrateLatest(database.knex);
      const log = new AuditLog(database.knex, loadOrCreateAuditKey(dataDir));
      for (let i = 0; i < 4; i += 1) await log.append(verdict('agent-c', i, i === 3 ? 'FAIL' : 'PASS'));
    } finally {
      await database.close();
    }
    const file = path.join(dir, 'agent-c.jsonl');
    const first = await runCli(['audit', 'export', '--agent', 'agent-c', '--data-dir', dataDir, '--out', file]);
    expect(first.code, first.stderr).to.equal(0);
    const again = await runCli(['audit', 'export', '--agent', 'agent-c', '--data-dir', dataDir]);
    expect(again.stdout).to.equal(readFileSync(file, 'utf8'));
    expect(again.stdout.split('\n')).to.have.length(6);
    expect(again.stdout.split('\n')[4]).to.match(/^\{"manifest":\{"agent":"agent-c","format":"ironlime-audit-export\/2","since":null,"streams":\[\{"from_seq":1,"last_hash":"[0-9a-f]{64}","last_seq":4,"stream":"agent-c"\}\]\},"signature":"/);

    const ok = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(ok.code).to.equal(0);
    expect(ok.stdout).to.equal('agent-c: ok, 4 record(s), seq 1 to 4, the last at 2026-12-02T18:00:03.000Z\nmanifest: signed; agent agent-c; complete: each stream from seq 1 to its last record when exported\nvalid: 4 record(s)\n');

    // A --since export verifies, and says it holds only part of the history: an auditor must not take it for the whole.
    const since = await runCli(['audit', 'export', '--agent', 'agent-c', '--since', '2026-12-02T18:00:02Z', '--data-dir', dataDir, '--out', file]);
    expect(since.code, since.stderr).to.equal(0);
    const partial = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(partial.code).to.equal(0);
    expect(partial.stdout).to.equal(
      'agent-c: ok, 3 record(s), seq 2 to 4, the last at 2026-12-02T18:00:03.000Z\n' +
        'manifest: signed; agent agent-c; since 2026-12-02T18:00:02.000Z only: each stream from its first record at or after that time (its last record when none is); before it, only the record just before is in this export\n' +
        'valid: 3 record(s)\n',
    );

    writeFileSync(file, again.stdout.replace('"outcome":"FAIL"', '"outcome":"PASS"'));
    const edited = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(edited.code).to.equal(1);
    expect(edited.stdout).to.contain('agent-c: BROKEN at line 4: record 4 (seq 4): its content does not match its hash');

    const lines = again.stdout.split('\n');
    writeFileSync(file, [lines[0], lines[2], lines[3], lines[4], ''].join('\n'));
    expect((await runCli(['audit', 'verify', file, '--data-dir', dataDir])).stdout).to.contain('BROKEN at line 2: record 2 (seq 3)');

    writeFileSync(file, [lines[0], lines[1], lines[2], lines[4], ''].join('\n'));
    const truncated = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(truncated.code).to.equal(1);
    expect(truncated.stdout).to.equal('agent-c: BROKEN at line 3: record 3 (seq 3): the signed manifest ends the stream at seq 4: records after this one were removed [truncated]\nmanifest: signed; agent agent-c; complete: each stream from seq 1 to its last record when exported\ninvalid\n');

    writeFileSync(file, [lines[0], lines[1], lines[2], lines[3], ''].join('\n'));
    const unsealed = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(unsealed.code).to.equal(1);
    expect(unsealed.stdout).to.contain('manifest: the export has no signed manifest');
    const readAnyway = await runCli(['audit', 'verify', file, '--unsealed', '--data-dir', dataDir]);
    expect(readAnyway.code).to.equal(0);
    expect(readAnyway.stdout).to.equal('agent-c: ok, 4 record(s), seq 1 to 4, the last at 2026-12-02T18:00:03.000Z\nmanifest: none (--unsealed): chains checked, not where they end\nvalid: 4 record(s)\n');

    const tampered = await createDatabase({ dataDir });
    try {
      await tampered.knex('audit_records').where({ stream: 'agent-c', seq: 4 }).delete();
    } finally {
      await tampered.close();
    }
    const flagged = await runCli(['audit', 'export', '--data-dir', dataDir, '--out', file]);
    expect(flagged.code).to.equal(1);
    expect(flagged.stderr).to.contain('ironlime: stream agent-c: audit_heads does not name its last record');
    expect((await runCli(['audit', 'verify', file, '--data-dir', dataDir])).stdout).to.match(/\[head-mismatch\]\nmanifest: signed; every stream; complete[^\n]*\ninvalid\n$/);

    writeFileSync(file, 'garbage\n');
    const garbage = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(garbage.code).to.equal(2);
    expect(garbage.stderr).to.equal('ironlime: line 1: not JSON\n');
  });
});
