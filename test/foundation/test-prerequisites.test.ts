import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
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
});
