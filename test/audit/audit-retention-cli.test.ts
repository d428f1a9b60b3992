import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { AuditFormatError } from '../../lib/audit/audit-errors.js';
import { parseAuditCheckpointLine } from '../../lib/audit/audit-checkpoint-line.js';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { AuditPruner } from '../../lib/verifier/audit-pruner.js';
import { loadVerifierConfig } from '../../lib/verifier/verifier-config.js';
import { runCli } from '../helpers/cli-runner.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';

const DAY_MS = 86_400_000;

describe('audit retention: ironlime audit export and verify', function () {
  // CLI processes, each a Node start: minutes on a loaded host.
  this.timeout(180_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-retention-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('export writes each checkpoint in place of its records and verify accepts it; without it, or moved to another stream, verify names the stream', async function () {
    const dataDir = path.join(dir, 'verifier');
    await seedPgliteFolder(dataDir);
    const database = await createDatabase({ dataDir });
    try {
      await migrateLatest(database.knex);
      const key = loadOrCreateAuditKey(dataDir);
      const log = new AuditLog(database.knex, key);
      for (const stream of ['agent-a', 'agent-b']) {
        for (let index = 0; index < 4; index += 1) {
          const at = new Date(Date.now() - (index < 3 ? 40 : 0) * DAY_MS + index).toISOString();
          await log.append({ stream, at, actor: 'verifier:v', action: 'verdict', agentId: stream, details: { outcome: 'pass', event_ids: [], failures: [] } });
        }
      }
      const pruner = new AuditPruner(database.knex, { retentionDays: 30, key, auditLog: log, actor: 'v', log: pino({ level: 'silent' }) });
      expect(await pruner.pruneOnce()).to.include({ streams: 2, records: 6 });
    } finally {
      await database.close();
    }
    const file = path.join(dir, 'pruned.jsonl');
    const exported = await runCli(['audit', 'export', '--data-dir', dataDir, '--out', file]);
    expect(exported.code, exported.stderr).to.equal(0);
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.filter((line) => line.startsWith('{"checkpoint":{"at":'))).to.have.length(2);
    expect(lines[0]).to.match(/^\{"checkpoint":\{"at":"[^"]+","from_seq":1,"hash":"[0-9a-f]{64}","prev_hash":"0{64}","stream":"agent-a","to_seq":3\},"signature":"/);

    const ok = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(ok.code, ok.stdout).to.equal(0);
    expect(ok.stdout).to.match(/^agent-a: ok, 1 record\(s\), seq 1 to 4 \(3 of them deleted by retention, stood for by 1 signed checkpoint\(s\)\), the last at /);
    expect(ok.stdout).to.match(/\nfleet: ok, 1 record\(s\), seq 1 to 1, the last at [^\n]+\nmanifest: signed; every stream; complete[^\n]*\nvalid: 3 record\(s\)\n$/);

    writeFileSync(file, lines.filter((line) => !line.includes('"stream":"agent-b","to_seq"')).join('\n'));
    const without = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(without.code).to.equal(1);
    expect(without.stdout).to.match(/^agent-b: BROKEN at line \d+: record 1 \(seq 4\): the signed manifest starts the stream at seq 1: records before this one were removed, and no signed checkpoint stands for them \[truncated\]$/m);

    // agent-a's checkpoint, its stream renamed, in place of agent-b's.
    const moved = lines.map((line) => (line.includes('"stream":"agent-b","to_seq"') ? (lines[0] as string).replace('"stream":"agent-a"', '"stream":"agent-b"') : line));
    writeFileSync(file, moved.join('\n'));
    const elsewhere = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(elsewhere.code).to.equal(1);
    expect(elsewhere.stdout).to.match(/^agent-b: BROKEN at line \d+: item 1, checkpoint of seq 1 to 3: not signed by the audit key for this stream: forged, edited or from another stream \[bad-checkpoint\]$/m);

    writeFileSync(file, `${(lines[0] as string).replace('"to_seq":3', '"to_seq":"3"')}\n`);
    const malformed = await runCli(['audit', 'verify', file, '--data-dir', dataDir]);
    expect(malformed.code).to.equal(2);
    expect(malformed.stderr).to.contain('line 1: checkpoint: from_seq and to_seq must be whole numbers');
  });

  it('refuses malformed checkpoint lines with a typed error naming the line', function () {
    const good = { checkpoint: { at: '2026-12-01T00:00:00.000Z', from_seq: 1, hash: 'a'.repeat(64), prev_hash: '0'.repeat(64), stream: 's', to_seq: 2 }, signature: 'AA==' };
    expect(parseAuditCheckpointLine(JSON.stringify(good), 1)).to.include({ stream: 's', fromSeq: 1, toSeq: 2 });
    const bad = [
      JSON.stringify(good).slice(0, 40),
      '{"checkpoint":',
      '{"checkpoint":[]}',
      JSON.stringify({ ...good, extra: 1 }),
      JSON.stringify({ ...good, checkpoint: { ...good.checkpoint, to_seq: 0 } }),
      JSON.stringify({ ...good, checkpoint: { ...good.checkpoint, from_seq: 3 } }),
      JSON.stringify({ ...good, checkpoint: { ...good.checkpoint, from_seq: 2 ** 60 } }),
      JSON.stringify({ ...good, checkpoint: { ...good.checkpoint, hash: 'A'.repeat(64) } }),
      JSON.stringify({ ...good, checkpoint: { ...good.checkpoint, stream: null } }),
      JSON.stringify({ ...good, signature: 5 }),
      `{"checkpoint":${'['.repeat(100_000)}`,
      `{"checkpoint":{"stream":"${'x'.repeat(1024 * 1024)}"}}`,
      `{"checkpoint":${Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 97) % 256)).toString('latin1')}`,
    ];
    for (const line of bad) expect(() => parseAuditCheckpointLine(line, 7), line.slice(0, 80)).to.throw(AuditFormatError, /^line 7: checkpoint: /);
  });

  it('auditRetentionDays is read from IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS and --audit-retention-days, 0 (keep all) by default, refused when negative', function () {
    const dataDir = path.join(dir, 'config');
    expect(loadVerifierConfig({ env: {}, overrides: { dataDir } }).auditRetentionDays).to.equal(0);
    expect(loadVerifierConfig({ env: { IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS: '90' }, overrides: { dataDir } }).auditRetentionDays).to.equal(90);
    expect(loadVerifierConfig({ env: { IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS: '90' }, overrides: { dataDir, auditRetentionDays: 7 } }).auditRetentionDays).to.equal(7);
    expect(() => loadVerifierConfig({ env: { IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS: '-1' }, overrides: { dataDir } })).to.throw(/IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS/);
  });
});
