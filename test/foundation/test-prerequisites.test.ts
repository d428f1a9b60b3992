import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../helpers/paths.js';

const script = join(REPO_ROOT, 'scripts', 'test-prerequisites.mjs');

function runScript(env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
}

describe('scripts/test-prerequisites.mjs (npm pretest)', () => {
  it('says nothing and changes nothing when everything is present', () => {
    const result = runScript(process.env);
    expect(result.status).to.equal(0);
    expect(result.stderr).to.equal('');
  });

  it('stops with the exact install command when tools are missing and it may not install', () => {
    const bin = mkdtempSync(join(tmpdir(), 'prereq-path-'));
    try {
      // Only node and npm on PATH: swtpm and tpm2-tools look missing.
      symlinkSync(process.execPath, join(bin, 'node'));
      const result = runScript({ ...process.env, PATH: bin, IRONLIME_NO_INSTALL: '1' });
      expect(result.status).to.equal(1);
      expect(result.stderr).to.contain('sudo apt-get install -y -qq swtpm swtpm-tools tpm2-tools');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  /** The arguments the script gives npm in a checkout whose lock holds `dependency` and whose node_modules is empty. */
  function npmArgumentsFor(dependency: Record<string, unknown>): string {
    const dir = mkdtempSync(join(tmpdir(), 'prereq-npm-'));
    try {
      mkdirSync(join(dir, 'scripts'));
      mkdirSync(join(dir, 'bin'));
      copyFileSync(script, join(dir, 'scripts', 'test-prerequisites.mjs'));
      writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ packages: { '': {}, 'node_modules/dep': { version: '1.0.0', ...dependency } } }));
      // A stand-in npm that notes its arguments and fails, so the script stops right after.
      writeFileSync(join(dir, 'bin', 'npm'), `#!/bin/sh\necho "$@" > '${join(dir, 'npm-args')}'\nexit 1\n`);
      chmodSync(join(dir, 'bin', 'npm'), 0o755);
      const result = spawnSync(process.execPath, [join(dir, 'scripts', 'test-prerequisites.mjs')], {
        env: { ...process.env, PATH: join(dir, 'bin'), CI: 'true' },
        encoding: 'utf8',
      });
      expect(result.status, result.stderr).to.equal(1);
      return readFileSync(join(dir, 'npm-args'), 'utf8').trim();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('installs without running our prepare (tsc) when no dependency has an install script: npm test builds right after', () => {
    expect(npmArgumentsFor({})).to.equal('ci --no-audit --no-fund --ignore-scripts');
  });

  it("runs install scripts when a locked dependency has one", () => {
    expect(npmArgumentsFor({ hasInstallScript: true })).to.equal('ci --no-audit --no-fund');
  });
});
