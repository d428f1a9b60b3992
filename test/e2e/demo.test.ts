import { expect } from 'chai';
import { runDemo } from '../../lib/demo/run-demo.js';
import { expectCleanedUp, expectOutcome } from './helpers/demo-outcome.js';

// The demo's three runs are three files (this one, demo-software-tpm and demo-sigint), so --parallel can
// run them side by side: together they were the suite's longest file, minutes on a loaded host.
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
});
