import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { captureOutput } from '../helpers/cli-runner.js';
import { main } from '../../lib/cli/main.js';
import { loadRegistrarConfig } from '../../lib/registrar/registrar-config.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error('timed out');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('registrar: CLI and config', function () {
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-registrar-cli-'));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('ironlime registrar starts from an empty data dir, serves, and stops cleanly on SIGTERM', async function () {
    const dataDir = path.join(dir, 'data');
    const output = captureOutput();
    let code: number | undefined;
    const running = main(['node', 'ironlime', 'registrar', '--data-dir', dataDir, '--port', '0', '--tls-port', '0', '--log-level', 'silent', '--ek-check', 'warn']).then(
      (exit) => {
        code = exit;
      },
    );
    try {
      await waitFor(() => output.out.join('').includes('registrar EK certificate check'), 50_000);
    } finally {
      output.restore();
    }
    const text = output.out.join('');
    const httpUrl = /registrar listening on (http:\/\/\S+)/.exec(text)?.[1];
    const tlsUrl = /registrar listening on (https:\/\/\S+)/.exec(text)?.[1];
    expect(httpUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(tlsUrl).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(text).to.contain(`registrar database: PGlite in ${path.join(dataDir, 'pglite')}`);
    expect(text).to.contain('registrar EK certificate check: warn');
    for (const created of ['ca/cacert.crt', 'ca/ca-private.pem', 'ca/registrar-cert.crt', 'ca/registrar-private.pem', 'pglite']) {
      expect(existsSync(path.join(dataDir, created)), created).to.equal(true);
    }
    const client = new RegistrarClient({ baseUrl: httpUrl ?? '' });
    try {
      expect((await client.version()).current_version).to.equal('2.6');
    } finally {
      client.close();
    }
    const stopping = captureOutput();
    try {
      process.emit('SIGTERM', 'SIGTERM');
      await running;
    } finally {
      stopping.restore();
    }
    expect(code).to.equal(0);
    expect(stopping.out.join('')).to.contain('registrar stopped (SIGTERM)');
  });

  it('refuses an invalid setting with exit code 2 before creating anything', async function () {
    const dataDir = path.join(dir, 'data');
    const output = captureOutput();
    let codes: number[];
    try {
      codes = [
        await main(['node', 'ironlime', 'registrar', '--data-dir', dataDir, '--ek-check', 'maybe']),
        await main(['node', 'ironlime', 'registrar', '--data-dir', dataDir, '--port', '99999']),
        await main(['node', 'ironlime', 'registrar', '--data-dir', dataDir, '--body-limit', '10']),
      ];
    } finally {
      output.restore();
    }
    expect(codes).to.deep.equal([2, 2, 2]);
    expect(output.err.join('')).to.contain('invalid config: registrar.bodyLimit: must not be less than 1024');
    expect(existsSync(dataDir)).to.equal(false);
  });

  it('layers defaults < config file < IRONLIME_REGISTRAR_* < overrides, and freezes the result', function () {
    const file = path.join(dir, 'registrar.json');
    writeFileSync(file, JSON.stringify({ dataDir: '/from/file', port: 1000, tlsPort: 1001, ekCheck: 'warn' }));
    const config = loadRegistrarConfig({
      file,
      env: { IRONLIME_REGISTRAR_PORT: '2000', IRONLIME_REGISTRAR_EK_CA_DIRS: '/a, /b', IRONLIME_REGISTRAR_HOST: '' },
      overrides: { port: 3000, host: undefined },
    });
    expect(config).to.include({ dataDir: '/from/file', port: 3000, tlsPort: 1001, ekCheck: 'warn', host: '127.0.0.1', bodyLimit: 262144 });
    expect(config.ekCaDirs).to.deep.equal(['/a', '/b']);
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.ekCaDirs)).to.equal(true);
  });

  it('names the field at fault: unknown fields, bad values, bad environment text', function () {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ dataDir: '/d', mtls: false }));
    expect(() => loadRegistrarConfig({ file })).to.throw('invalid config: registrar.mtls: unknown field');
    expect(() => loadRegistrarConfig({ overrides: { dataDir: '/d', ekCheck: 'maybe' } })).to.throw(
      'invalid config: registrar.ekCheck: must be one of require, warn, off',
    );
    expect(() => loadRegistrarConfig({ env: { IRONLIME_REGISTRAR_DATA_DIR: '/d', IRONLIME_REGISTRAR_TLS_PORT: 'x' } })).to.throw(
      'invalid config: IRONLIME_REGISTRAR_TLS_PORT: must be a non-negative integer, got "x"',
    );
    expect(() => loadRegistrarConfig({})).to.throw(/^invalid config: registrar\.dataDir: /);
  });
});
