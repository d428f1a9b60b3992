import { expect } from 'chai';
import { runDemo } from '../../lib/demo/run-demo.js';
import { expectCleanedUp, expectOutcome } from './helpers/demo-outcome.js';

describe('ironlime demo --software-tpm', function () {
  // Several minutes when the CI host is loaded.
  this.timeout(480_000);

  it('the same story on the in-process software TPM, and it says so', async function () {
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
});
