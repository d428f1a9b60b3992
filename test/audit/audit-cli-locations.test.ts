import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { AuditLog } from '../../lib/audit/audit-log.js';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { createDatabase } from '../../lib/db/database-factory.js';
import { migrateLatest } from '../../lib/db/migrate.js';
import { runCli } from '../helpers/cli-runner.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { LocalTcpProxy } from '../helpers/local-tcp-proxy.js';

/** Relays PostgreSQL until the server has sent `budget` bytes on one connection, then cuts that connection. */
class CutAfterBytesProxy extends LocalTcpProxy {
  constructor(private readonly budget: number) {
    super();
  }

  protected accept(client: Socket): void {
    const { upstream } = this.openUpstream(client);
    let sent = 0;
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (sent > this.budget) {
        client.destroy();
        upstream.destroy();
      } else {
        client.write(chunk);
      }
    });
  }
}

/** A PostgreSQL URL whose connections work in `schema` (the server applies `options` at connection start). */
function schemaUrl(schema: string, port?: number): string {
  const url = new URL(TEST_DATABASE_URL);
  if (port !== undefined) url.port = String(port);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Sets environment variables for the duration of `run`, then puts the old values back. */
async function withEnv<T>(values: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  try {
    return await run();
  } finally {
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe("ironlime audit export and verify: the verifier's own folder and database, and an --out replaced only when complete", function () {
  this.timeout(120_000);
  const schema = `test_${randomBytes(8).toString('hex')}`;
  const records = 600;
  let admin: Knex;
  let dir: string;
  let dataDir: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-audit-loc-'));
    dataDir = path.join(dir, 'verifier');
    mkdirSync(dataDir);
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    const database = await createDatabase({ url: TEST_DATABASE_URL, dataDir, searchPath: schema });
    try {
      await migrateLatest(database.knex);
      const log = new AuditLog(database.knex, loadOrCreateAuditKey(dataDir));
      // About 6 MB of export, read in batches of 200: a connection cut after 1 MB stops it in its first batches.
      for (let i = 0; i < records; i += 1) {
        await log.append({ stream: 'agent-loc', at: new Date(Date.UTC(2026, 11, 6, 8, 0, 0, i)).toISOString(), actor: 'verifier:v1', action: 'verdict', agentId: 'agent-loc', details: { outcome: 'PASS', padding: 'p'.repeat(10_000) } });
      }
    } finally {
      await database.close();
    }
  });
  after(async () => {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('export and verify find the folder and database in IRONLIME_VERIFIER_DATA_DIR and IRONLIME_VERIFIER_DATABASE_URL, as the verifier does', async () => {
    const file = path.join(dir, 'from-env.jsonl');
    const exported = await withEnv({ IRONLIME_VERIFIER_DATA_DIR: dataDir, IRONLIME_VERIFIER_DATABASE_URL: schemaUrl(schema) }, () => runCli(['audit', 'export', '--out', file]));
    expect(exported.code, exported.stderr).to.equal(0);
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).to.have.length(records + 1);
    const verified = await withEnv({ IRONLIME_VERIFIER_DATA_DIR: dataDir }, () => runCli(['audit', 'verify', file]));
    expect(verified.code, verified.stderr).to.equal(0);
    expect(verified.stdout).to.contain(`valid: ${records} record(s)`);
  });

  it('an export cut off by the database leaves the earlier export at --out as it was, and no partial file', async () => {
    const file = path.join(dir, 'kept.jsonl');
    const earlier = 'the earlier export\n';
    writeFileSync(file, earlier);
    const proxy = new CutAfterBytesProxy(1_000_000);
    await proxy.start();
    try {
      const run = await runCli(['audit', 'export', '--data-dir', dataDir, '--database', schemaUrl(schema, proxy.port), '--out', file]);
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stderr).to.match(new RegExp(`^ironlime: database unavailable: reading the audit log: .+; ${file.replace(/[.]/g, '[.]')} was left as it was\\n$`));
    } finally {
      await proxy.close();
    }
    expect(readFileSync(file, 'utf8')).to.equal(earlier);
    expect(readdirSync(dir).filter((name) => name.startsWith('kept.jsonl'))).to.deep.equal(['kept.jsonl']);
  });

  it('a complete export replaces the earlier one at --out', async () => {
    const file = path.join(dir, 'replaced.jsonl');
    writeFileSync(file, 'the earlier export\n');
    const run = await runCli(['audit', 'export', '--data-dir', dataDir, '--database', schemaUrl(schema), '--out', file]);
    expect(run.code, run.stderr).to.equal(0);
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).to.have.length(records + 1);
    expect(readdirSync(dir).filter((name) => name.startsWith('replaced.jsonl'))).to.deep.equal(['replaced.jsonl']);
  });
});
