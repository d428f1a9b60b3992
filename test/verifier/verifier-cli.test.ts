import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { captureOutput } from '../helpers/cli-runner.js';
import { main } from '../../lib/cli/main.js';
import { VerifierClient } from '../../lib/verifier/verifier-client.js';

describe('ironlime verifier (CLI)', function () {
  this.timeout(90_000);
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-verifier-cli-'));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts zero-config from an empty data dir, serves /version over HTTPS, keeps its instance id, stops on SIGTERM', async function () {
    const dataDir = path.join(dir, 'data');
    const output = captureOutput();
    let code: number | undefined;
    const running = main(['node', 'ironlime', 'verifier', '--data-dir', dataDir, '--port', '0', '--log-level', 'silent', '--quote-interval', '0.5']).then((exit) => {
      code = exit;
    });
    try {
      const deadline = Date.now() + 80_000;
      while (!output.out.join('').includes('polling 0 agent(s)')) {
        if (Date.now() > deadline || code !== undefined) {
          throw new Error(`verifier did not start: ${output.err.join('')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      output.restore();
    }
    const text = output.out.join('');
    const url = /verifier listening on (https:\/\/\S+)/.exec(text)?.[1] ?? '';
    expect(url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(text).to.contain(`verifier database: PGlite in ${path.join(dataDir, 'pglite')}`);
    const instanceId = readFileSync(path.join(dataDir, 'verifier-instance-id'), 'utf8').trim();
    expect(text).to.contain(`verifier id default, instance ${instanceId}: polling 0 agent(s)`);
    for (const created of ['ca/cacert.crt', 'ca/verifier-cert.crt', 'ca/verifier-client-cert.crt', 'ca/verifier-client-private.pem', 'pglite']) {
      expect(existsSync(path.join(dataDir, created)), created).to.equal(true);
    }
    const client = new VerifierClient({ baseUrl: url, tls: { ca: readFileSync(path.join(dataDir, 'ca', 'cacert.crt'), 'utf8') } });
    try {
      expect(await client.version()).to.deep.include({ current_version: '2.6' });
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
    expect(stopping.out.join('')).to.contain('verifier stopped (SIGTERM)');
  });

  it('refuses invalid settings with exit code 2 before creating anything', async function () {
    const dataDir = path.join(dir, 'data');
    const output = captureOutput();
    const previous = process.env['IRONLIME_VERIFIER_MAX_RETRIES'];
    let codes: number[];
    try {
      codes = [
        await main(['node', 'ironlime', 'verifier', '--data-dir', dataDir, '--quote-interval', 'soon']),
        await main(['node', 'ironlime', 'verifier', '--data-dir', dataDir, '--measured-boot-policy', 'custom']),
        await main(['node', 'ironlime', 'verifier']),
      ];
      process.env['IRONLIME_VERIFIER_MAX_RETRIES'] = 'many';
      codes.push(await main(['node', 'ironlime', 'verifier', '--data-dir', dataDir]));
    } finally {
      if (previous === undefined) {
        delete process.env['IRONLIME_VERIFIER_MAX_RETRIES'];
      } else {
        process.env['IRONLIME_VERIFIER_MAX_RETRIES'] = previous;
      }
      output.restore();
    }
    expect(codes).to.deep.equal([2, 2, 2, 2]);
    const errors = output.err.join('');
    expect(errors).to.contain('invalid config: verifier.dataDir: should not be empty');
    expect(errors).to.contain('invalid config: IRONLIME_VERIFIER_MAX_RETRIES: must be a non-negative number, got "many"');
    expect(existsSync(dataDir)).to.equal(false);
  });
});
