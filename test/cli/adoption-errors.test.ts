import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { runCli, spawnCli } from '../helpers/cli-runner.js';

/** A raw Node stack trace line ("    at fn (file:1:2)") or Node's crash banner. */
const STACK_TRACE = /^\s+at .*|^Node\.js v/m;

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

describe('everyday mistakes end in one sentence, not a stack trace', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-adoption-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('a registrar port already in use: exit 2 with the address and what to do', async () => {
    const held = await holdPort();
    try {
      const cli = spawnCli(['registrar', '--data-dir', path.join(dir, 'reg'), '--port', String(held.port), '--tls-port', '0', '--log-level', 'silent']);
      const code = await cli.exited();
      expect(cli.stderr()).to.not.match(STACK_TRACE);
      expect(cli.stderr()).to.equal(`ironlime: invalid config: port: address 127.0.0.1:${held.port} is already in use: another service runs there; choose another --port\n`);
      expect(code).to.equal(2);
    } finally {
      held.server.close();
    }
  });

  it('audit verify of a missing file: exit 2, one line naming the file', async () => {
    const missing = path.join(dir, 'none.jsonl');
    const run = await runCli(['audit', 'verify', missing]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.equal(`ironlime: ENOENT: no such file or directory, open '${missing}'\n`);
  });

  it('ca init into a path that is a file: exit 2, one line', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    const run = await runCli(['ca', 'init', '--dir', file]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(/^ironlime: E[A-Z]+: [^\n]+\n$/);
  });

  it('PostgreSQL down: only ironlime\'s own sentence, nothing from knex on stdout', async () => {
    const run = await runCli(['db', 'migrate', '--database', 'postgres://postgres@127.0.0.1:1/test']);
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.equal('ironlime: database unavailable: postgres://postgres@127.0.0.1:1/test: connect ECONNREFUSED 127.0.0.1:1\n');
  });

  it('db migrate --database with something that is not a postgres:// URL is refused as such', async () => {
    const run = await runCli(['db', 'migrate', '--database', 'notaurl']);
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.match(/^ironlime: invalid config: databaseUrl: .*postgres/);
  });

  it('token issue without the verifier\'s key refuses and creates no key', async () => {
    const run = await runCli(['token', 'issue', '--role', 'admin', '--tenant', 'default', '--data-dir', dir]);
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.equal(`ironlime: --data-dir: no verifier token key (api-token-key.pem) in ${dir}: point --data-dir at the verifier's data folder (the one given to ironlime verifier --data-dir)\n`);
    expect(readdirSync(dir)).to.deep.equal([]);
    const missing = await runCli(['token', 'issue', '--role', 'admin', '--tenant', 'default', '--data-dir', path.join(dir, 'nowhere')]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/^ironlime: --data-dir: no verifier token key /);
    expect(existsSync(path.join(dir, 'nowhere'))).to.equal(false);
  });

  it('token issue takes the verifier\'s data folder from IRONLIME_VERIFIER_DATA_DIR', async () => {
    loadOrCreateTokenKey(dir);
    const before = process.env['IRONLIME_VERIFIER_DATA_DIR'];
    process.env['IRONLIME_VERIFIER_DATA_DIR'] = dir;
    try {
      const run = await runCli(['token', 'issue', '--role', 'viewer', '--tenant', 'default']);
      expect(run.stderr).to.match(/^token id/);
      expect(run.code).to.equal(0);
    } finally {
      if (before === undefined) delete process.env['IRONLIME_VERIFIER_DATA_DIR'];
      else process.env['IRONLIME_VERIFIER_DATA_DIR'] = before;
    }
  });
});
