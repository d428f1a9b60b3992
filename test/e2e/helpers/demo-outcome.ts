import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect } from 'chai';
import type { DemoResult } from '../../../lib/demo/run-demo.js';
import { processAlive } from '../../helpers/process-alive.js';

/** Processes whose command line mentions `text` (swtpm runs with its state folder in its arguments). */
export function processesMentioning(text: string): string[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return listing.split('\n').filter((line) => line.includes(text) && !line.includes('ps -eo'));
}

/** The demo's folder is gone and nothing it started still runs. */
export function expectCleanedUp(result: DemoResult): void {
  expect(existsSync(result.dir), `${result.dir} removed`).to.equal(false);
  expect(result.swtpmPids.filter(processAlive), 'swtpm processes still running').to.deep.equal([]);
  expect(processesMentioning(result.dir)).to.deep.equal([]);
}

/** The demo's story: node-3 refused with its disk key, node-4 (no TPM) refused deploy, node-1 and node-2 trusted. */
export function expectOutcome(result: DemoResult, output: readonly string[]): void {
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
