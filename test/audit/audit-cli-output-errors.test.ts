import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { spawnCli } from '../helpers/cli-runner.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';

/** What a failed command printed: one `ironlime:` line, never a stack trace. */
function refusal(stderr: string): { lines: number; stack: boolean } {
  return { lines: stderr.trimEnd().split('\n').length, stack: /\n\s+at |node:internal|Unhandled/.test(stderr) };
}

describe('ironlime audit export and verify: output and input errors are coded, never a crash', function () {
  this.timeout(120_000);
  let dir: string;
  let dataDir: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-io-'));
    dataDir = path.join(dir, 'verifier');
    await seedPgliteFolder(dataDir);
    const database = await createDatabase({ dataDir });
    try {
      await migrateLatest(database.knex);
      const log = new AuditLog(database.knex, loadOrCreateAuditKey(dataDir));
      // About 400 KB of export: more than a pipe holds, so the export is still writing when the reader goes.
      for (let i = 0; i < 40; i += 1) {
        await log.append({ stream: 'agent-io', at: new Date(Date.UTC(2026, 11, 5, 18, 0, i)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: 'agent-io', details: { outcome: 'PASS', padding: 'p'.repeat(10_000) } });
      }
    } finally {
      await database.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('an export whose reader closes the pipe (EPIPE) stops with exit 2 and one line on stderr', async () => {
    const run = spawnCli(['audit', 'export', '--data-dir', dataDir]);
    run.child.stdout?.once('data', () => run.child.stdout?.destroy());
    const code = await run.exited();
    expect({ code, ...refusal(run.stderr()) }, run.stderr()).to.deep.equal({ code: 2, lines: 1, stack: false });
    expect(run.stderr()).to.match(/^ironlime: stdout: cannot write the export: .*EPIPE.*; what was written has no manifest\n$/);
  });

  it('an --out in a folder that does not exist: exit 2, named, no stack trace', async () => {
    const out = path.join(dir, 'missing', 'export.jsonl');
    const run = spawnCli(['audit', 'export', '--data-dir', dataDir, '--out', out]);
    expect({ code: await run.exited(), ...refusal(run.stderr()) }, run.stderr()).to.deep.equal({ code: 2, lines: 1, stack: false });
    expect(run.stderr()).to.contain(`ironlime: ${out}: cannot write the export: ENOENT`);
  });

  it("export from a folder without the verifier's audit key: exit 2 naming --data-dir, and neither a key nor a database made there", async () => {
    const elsewhere = path.join(dir, 'operator');
    mkdirSync(elsewhere);
    const run = spawnCli(['audit', 'export', '--data-dir', elsewhere]);
    expect({ code: await run.exited(), ...refusal(run.stderr()) }, run.stderr()).to.deep.equal({ code: 2, lines: 1, stack: false });
    expect(run.stderr()).to.contain(`ironlime: --data-dir: no verifier audit key (audit-signing-key.pem) in ${elsewhere}`);
    expect(readdirSync(elsewhere)).to.deep.equal([]);
  });

  it('export with an audit key it cannot use (corrupt, or an EC key, not Ed25519): exit 2, one line naming the file', async () => {
    const folder = path.join(dir, 'bad-key');
    mkdirSync(folder);
    const file = path.join(folder, 'audit-signing-key.pem');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    for (const pem of ['not a key\n', ec]) {
      writeFileSync(file, pem, { mode: 0o600 });
      const run = spawnCli(['audit', 'export', '--data-dir', folder]);
      expect({ code: await run.exited(), ...refusal(run.stderr()) }, run.stderr()).to.deep.equal({ code: 2, lines: 1, stack: false });
      expect(run.stderr()).to.contain(`ironlime: ${file} holds `).and.contain("an Ed25519 key (the verifier's audit key)");
    }
  });

  it('verify of a file that does not exist, or of a folder: exit 2, named, no stack trace', async () => {
    for (const file of [path.join(dir, 'missing.jsonl'), dir]) {
      const run = spawnCli(['audit', 'verify', file, '--data-dir', dataDir]);
      expect({ code: await run.exited(), ...refusal(run.stderr()) }, run.stderr()).to.deep.equal({ code: 2, lines: 1, stack: false });
      expect(run.stderr()).to.contain(`ironlime: ${file}: cannot read: `);
    }
  });
});
