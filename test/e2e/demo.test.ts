import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { runDemo, type DemoResult } from '../../lib/demo/run-demo.js';
import { processAlive } from '../helpers/process-alive.js';

/** The root of this compiled tree (`dist/` in `npm test`): two folders above this file. */
const BUILD_ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Processes whose command line mentions `text` (swtpm runs with its state folder in its arguments). */
function processesMentioning(text: string): string[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return listing.split('\n').filter((line) => line.includes(text) && !line.includes('ps -eo'));
}

function expectCleanedUp(result: DemoResult): void {
  expect(existsSync(result.dir), `${result.dir} removed`).to.equal(false);
  expect(result.swtpmPids.filter(processAlive), 'swtpm processes still running').to.deep.equal([]);
  expect(processesMentioning(result.dir)).to.deep.equal([]);
}

function expectOutcome(result: DemoResult, output: readonly string[]): void {
  expect(result.exitCode, output.join('\n')).to.equal(0);
  const byName = Object.fromEntries(result.nodes.map((row) => [row.name, row]));
  expect(byName['node-3']).to.deep.include({ state: 'deploy failed', attestation: 'failed' });
  expect(byName['node-3']?.detail).to.contain('ima.validation.ima-ng.not_in_allowlist');
  for (const name of ['node-1', 'node-2']) {
    expect(byName[name], name).to.deep.include({ state: 'active', attestation: 'passed' });
  }
  expect(output.some((line) => line.includes('verifier: node-3 failed attestation (ima.validation.ima-ng.not_in_allowlist'))).to.equal(true);
  expect(byName['node-3']?.diskKey, 'the tampered node is refused its disk key by the broker').to.match(/^refused: /);
  for (const name of ['node-1', 'node-2']) {
    expect(byName[name]?.diskKey, name).to.equal('released (32 bytes)');
  }
  expect(byName['node-4']).to.deep.include({ state: 'deploy failed', trust: 'id-secret' });
  expect(byName['node-4']?.detail).to.contain('deploy needs trust level hardware-tpm');
  expect(byName['node-4']?.diskKey).to.equal('-');
  expect(output, 'the table says what its - means').to.include('disk key -: the node does not ask the broker for one in this demo (node-4: no TPM)');
  expect(byName['node-1']?.trust).to.equal('hardware-tpm');
  expect(output).to.include('result: node-3 was refused, and its disk key with it; node-4 (no TPM, id-secret) was cleaned but refused deploy (minimum hardware-tpm); node-1 and node-2 stayed trusted and active');
}

describe('ironlime demo', function () {
  // About 45 s on a quiet host; several minutes when the CI host is loaded.
  this.timeout(480_000);

  it('with swtpm: refuses the tampered node, keeps the others trusted, leaves nothing behind', async function () {
    const output: string[] = [];
    const result = await runDemo({ print: (line) => output.push(line) });
    expect(result.tpmKind).to.equal('swtpm');
    expect(output[1]).to.equal('TPM: swtpm (swtpm, swtpm_setup and tpm2_quote found on PATH), one per node');
    expect(result.swtpmPids).to.have.length(3);
    expectOutcome(result, output);
    expectCleanedUp(result);
  });

  it('with --software-tpm: the same story on the in-process software TPM, and it says so', async function () {
    const output: string[] = [];
    const result = await runDemo({ softwareTpm: true, print: (line) => output.push(line) });
    expect(result.tpmKind).to.equal('software');
    expect(output[1]).to.equal('TPM: the in-process software TPM (--software-tpm given): emulated, no root of trust');
    expect(output.some((line) => /\] dashboard: https:\/\/127\.0\.0\.1:\d+\/dashboard \(self-signed: CA /.test(line))).to.equal(true);
    expect(output.filter((line) => /^ +(viewer|admin) token: +ey[\w-]+\.[\w-]+\.[\w-]+$/.test(line.replace(/^\[[ \d.]+s\]/, '')))).to.have.length(2);
    expect(result.swtpmPids).to.deep.equal([]);
    expectOutcome(result, output);
    expectCleanedUp(result);
  });

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
