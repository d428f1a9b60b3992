import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { processesMentioning } from './helpers/demo-outcome.js';

/** The root of this compiled tree (`dist/` in `npm test`): two folders above this file. */
const BUILD_ROOT = path.resolve(import.meta.dirname, '..', '..');

describe('ironlime demo interrupted', function () {
  // Several minutes when the CI host is loaded.
  this.timeout(480_000);

  it('on SIGINT stops everything, removes its folder and exits 130 (as a child process)', async function () {
    const script = `const { main } = await import(${JSON.stringify(path.join(BUILD_ROOT, 'lib', 'cli', 'main.js'))});
process.exitCode = await main(['node', 'ironlime', 'demo', '--software-tpm']);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let interrupted = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (!interrupted && stdout.includes('starting registrar and verifier')) {
        interrupted = true;
        setTimeout(() => child.kill('SIGINT'), 1500);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    expect(code, stdout).to.equal(130);
    expect(stdout).to.contain('interrupted: shutting down');
    const dir = /fresh CA in (\S+)/.exec(stdout)?.[1] as string;
    expect(stdout).to.contain(`removed ${dir}`);
    expect(existsSync(dir)).to.equal(false);
    expect(processesMentioning(dir)).to.deep.equal([]);
  });
});
