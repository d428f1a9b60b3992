import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import path from 'node:path';
import knexFactory from 'knex';
import { InvalidConfig } from '../../interfaces/errors.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { startRegistrar } from '../../lib/registrar/registrar-server.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { runCli, spawnCli } from '../helpers/cli-runner.js';
import { openTestSchema, TEST_DATABASE_URL } from '../helpers/databases.js';
import { closedPort } from '../helpers/ports.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** The `ironlime` command itself: a broker's workers re-run it under node:cluster. */
const BIN = path.resolve(import.meta.dirname, '../../../bin/ironlime.js');

function holdPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address !== null ? address.port : 0 });
    });
  });
}

/** Listens on `port` (rejecting when it is taken): proves a refused start released it. */
function holdPortNumber(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('everyday mistakes end in one sentence, not a stack trace', () => {
  const dir = tempDirPerTest('ironlime-adoption-');

  // In-process on a PostgreSQL schema: a spawned CLI opens PGlite first, which takes half a minute.
  for (const [setting, option] of [['port', '--port'], ['tlsPort', '--tls-port']] as const) {
    it(`a registrar ${option} already in use: InvalidConfig with the address and what to do, nothing left listening`, async () => {
      const held = await holdPort();
      const opened = await openTestSchema();
      const free = await closedPort();
      try {
        const ports = setting === 'port' ? { port: held.port, tlsPort: free } : { port: free, tlsPort: held.port };
        const refused = await startRegistrar({ dataDir: path.join(dir.path, 'reg'), ...ports }, { database: opened.database }).then(
          () => expect.fail('the registrar started on a taken port'),
          (error: unknown) => error,
        );
        expect(refused).to.be.instanceOf(InvalidConfig);
        expect((refused as InvalidConfig).message).to.equal(`invalid config: ${setting}: address 127.0.0.1:${held.port} is already in use: another service runs there; choose another ${option}`);
        const other = await holdPortNumber(free);
        other.close();
      } finally {
        held.server.close();
        await opened.dispose();
      }
    });
  }

  it('broker --workers 2 on a port already in use ends (non-zero, with the one line) instead of waiting for its workers forever', async function () {
    this.timeout(90_000);
    const held = await holdPort();
    const name = `adoption_${randomBytes(6).toString('hex')}`;
    const admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create database ??', [name]);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    try {
      const child = spawn(process.execPath, [BIN, 'broker', '--data-dir', path.join(dir.path, 'broker'), '--database', url.toString(), '--workers', '2', '--port', String(held.port), '--log-level', 'silent'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(stderr).to.include(`ironlime: invalid config: port: address 127.0.0.1:${held.port} is already in use`);
      expect(code).to.not.equal(0);
    } finally {
      held.server.close();
      await admin.raw('drop database if exists ?? with (force)', [name]);
      await admin.destroy();
    }
  });

  it('a usage mistake (a missing value, an unknown option) is the error and one hint line, not the command\'s whole help', async () => {
    for (const args of [['verifier', '--port'], ['tenant', 'add', '--uuid', 'a', '--bogus']]) {
      const run = await runCli(args);
      expect(run.code).to.equal(2);
      expect(run.stderr.trimEnd().split('\n'), run.stderr).to.have.length(2);
      expect(run.stderr).to.match(/^error: .+\n\(add --help for the usage\)\n$/);
    }
  });

  it('tenant --ca, --cert and --key holding the wrong thing (a certificate as the key, a key as the certificate, another certificate\'s key): exit 2, one line naming the option, no OpenSSL stack trace', async () => {
    const tls = tlsFixture();
    const file = (name: string, text: string) => {
      writeFileSync(path.join(dir.path, name), text, { mode: 0o600 });
      return path.join(dir.path, name);
    };
    const ca = file('ca.pem', tls.ca.certPem);
    const cert = file('cert.pem', tls.client.certPem);
    const key = file('key.pem', tls.client.keyPem);
    const otherKey = file('other-key.pem', tls.foreignClient.keyPem);
    for (const [files, said] of [
      [[ca, cert, cert], `--key ${cert} holds no readable PEM private key`],
      [[ca, key, key], `--cert ${key} holds no readable PEM certificate`],
      [[key, cert, key], `--ca ${key} holds no readable PEM certificate`],
      [[ca, cert, otherKey], `--key ${otherKey} is not the private key of the client certificate`],
    ] as const) {
      const run = await runCli(['tenant', 'list', '--verifier', 'https://127.0.0.1:1', '--ca', files[0], '--cert', files[1], '--key', files[2]]);
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stdout).to.equal('');
      expect(run.stderr.startsWith(`ironlime: invalid config: tenant.tls: ${said}`), run.stderr).to.equal(true);
      expect(run.stderr.trimEnd().split('\n')).to.have.length(1);
    }
  });

  it('tenant --verifier or --registrar that is no https URL (no scheme, plain http) or has a path is one line naming the option and the port to give, before any file is read', async () => {
    for (const [args, said] of [
      [['status', '--uuid', 'a1', '--verifier', '127.0.0.1:8881'], `--verifier: "127.0.0.1:8881" is not a URL: give https://HOST:PORT (the verifier's port, 8881 by default)`],
      [['status', '--uuid', 'a1', '--verifier', 'http://127.0.0.1:8881'], `--verifier: http://127.0.0.1:8881: the tenant speaks mTLS only: give https://HOST:PORT (the verifier's port, 8881 by default)`],
      [['add', '--uuid', 'a1', '--registrar', 'http://127.0.0.1:8890'], "--registrar: http://127.0.0.1:8890: the tenant speaks mTLS only: give https://HOST:PORT (the registrar's TLS port, 8891 by default, not its plain-HTTP registration port 8890)"],
      [['registrar', 'list', '--registrar', 'http://127.0.0.1:8890'], "--registrar: http://127.0.0.1:8890: the tenant speaks mTLS only: give https://HOST:PORT (the registrar's TLS port, 8891 by default, not its plain-HTTP registration port 8890)"],
      [['status', '--uuid', 'a1', '--verifier', 'https://127.0.0.1:8881/v2.6'], "--verifier: https://127.0.0.1:8881/v2.6: give the service's address only, https://HOST:PORT (the tenant adds the API version and path itself)"],
      [['registrar', 'list', '--registrar', 'https://127.0.0.1:8891/?x=1'], "--registrar: https://127.0.0.1:8891/?x=1: give the service's address only, https://HOST:PORT (the tenant adds the API version and path itself)"],
    ] as const) {
      const run = await runCli(['tenant', ...args, '--data-dir', path.join(dir.path, 'no-such-dir')]);
      expect([run.code, run.stdout, run.stderr]).to.deep.equal([2, '', `ironlime: ${said}\n`]);
    }
  });

  it('tenant against a service whose certificate is not from --ca, or a plain-HTTP port: one line naming --ca or the URL option', async () => {
    const tls = tlsFixture();
    const file = (name: string, text: string) => {
      writeFileSync(path.join(dir.path, name), text, { mode: 0o600 });
      return path.join(dir.path, name);
    };
    const files = ['--ca', file('other-ca.pem', tls.otherCa.certPem), '--cert', file('cert.pem', tls.client.certPem), '--key', file('key.pem', tls.client.keyPem)];
    const https = createHttpsServer({ cert: tls.server.certPem, key: tls.server.keyPem }, (_request, response) => response.end('{}'));
    const plain = createHttpServer((_request, response) => response.end('{}'));
    const listen = (server: Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    const [httpsPort, plainPort] = [await listen(https), await listen(plain)];
    try {
      const untrusted = await runCli(['tenant', 'list', '--verifier', `https://127.0.0.1:${httpsPort}`, ...files]);
      expect(untrusted.code).to.equal(2);
      expect(untrusted.stderr).to.match(new RegExp(`^ironlime: --ca: the service at https://127\\.0\\.0\\.1:${httpsPort} has a certificate that does not verify with this CA \\(is it the CA of that service\\?\\): .*TLS handshake failed`));
      const notTls = await runCli(['tenant', 'registrar', 'list', '--registrar', `https://127.0.0.1:${plainPort}`, ...files]);
      expect(notTls.code).to.equal(2);
      expect(notTls.stderr).to.match(new RegExp(`^ironlime: --registrar: https://127\\.0\\.0\\.1:${plainPort} speaks no TLS in common with the tenant \\(is it the service's https port\\?\\): `));
    } finally {
      https.close();
      plain.close();
    }
  });

  it('audit verify of a missing file: exit 2, one line naming the file', async () => {
    const missing = path.join(dir.path, 'none.jsonl');
    const keyFile = path.join(dir.path, 'audit-public.pem');
    writeFileSync(keyFile, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    const run = await runCli(['audit', 'verify', missing, '--public-key', keyFile]);
    expect(run.code).to.equal(2);
    expect(run.stderr.split('\n')).to.have.length(2);
    expect(run.stderr).to.match(new RegExp(`^ironlime: .*${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*ENOENT`));
  });

  it("audit verify without the verifier's public key: exit 2, one line naming --public-key and --data-dir", async () => {
    const run = await runCli(['audit', 'verify', path.join(dir.path, 'none.jsonl'), '--data-dir', path.join(dir.path, 'no-verifier-here')]);
    expect(run.code).to.equal(2);
    expect(run.stderr.split('\n')).to.have.length(2);
    expect(run.stderr).to.include("cannot read the verifier's audit public key");
    expect(run.stderr).to.include('pass --public-key, or point --data-dir at the verifier');
  });

  it('ca init into a path that is a file: exit 2, one line', async () => {
    const file = path.join(dir.path, 'a-file');
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
    const run = await runCli(['token', 'issue', '--role', 'admin', '--tenant', 'default', '--data-dir', dir.path]);
    expect(run.code).to.equal(2);
    expect(run.stdout).to.equal('');
    expect(run.stderr).to.equal(`ironlime: --data-dir: no verifier token key (api-token-key.pem) in ${dir.path}: point --data-dir at the verifier's data folder (the one given to ironlime verifier --data-dir)\n`);
    expect(readdirSync(dir.path)).to.deep.equal([]);
    const missing = await runCli(['token', 'issue', '--role', 'admin', '--tenant', 'default', '--data-dir', path.join(dir.path, 'nowhere')]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/^ironlime: --data-dir: no verifier token key /);
    expect(existsSync(path.join(dir.path, 'nowhere'))).to.equal(false);
  });

  it('token issue with a key file it cannot use (corrupt, or an Ed25519 key, not P-256) is one line naming the file, exit 2', async () => {
    const file = path.join(dir.path, 'api-token-key.pem');
    const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    for (const pem of ['not a key\n', ed25519]) {
      writeFileSync(file, pem, { mode: 0o600 });
      const run = await runCli(['token', 'issue', '--role', 'admin', '--tenant', 'default', '--data-dir', dir.path]);
      expect(run.code).to.equal(2);
      expect(run.stdout).to.equal('');
      expect(run.stderr.startsWith(`ironlime: ${file} holds `), run.stderr).to.equal(true);
      expect(run.stderr).to.contain("an EC P-256 key (the verifier's API-token key)");
      expect(run.stderr.trimEnd().split('\n')).to.have.length(1);
    }
  });

  it('a PGlite folder that PGlite cannot open (a first start killed in initdb) is one line on stderr, nothing on stdout', async function () {
    this.timeout(120_000);
    mkdirSync(path.join(dir.path, 'pglite'));
    writeFileSync(path.join(dir.path, 'pglite', 'PG_VERSION'), '17\n');
    const run = spawnCli(['db', 'migrate', '--data-dir', dir.path]);
    expect(await run.exited()).to.equal(2);
    expect(run.stdout()).to.equal('');
    expect(run.stderr()).to.match(/^ironlime: database unavailable: PGlite in .*\n$/);
  });

  it('token issue takes the verifier\'s data folder from IRONLIME_VERIFIER_DATA_DIR', async () => {
    loadOrCreateTokenKey(dir.path);
    const before = process.env['IRONLIME_VERIFIER_DATA_DIR'];
    process.env['IRONLIME_VERIFIER_DATA_DIR'] = dir.path;
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
