import { expect } from 'chai';
import { coverageWarnings, maskOfTpmPolicy } from '../../lib/cli/attestation-coverage.js';

describe('cli: what an enrolment leaves unattested', () => {
  it('warns of no PCR at all, of no boot-chain PCR, of no IMA PCR; nothing when both are covered', () => {
    expect(coverageWarnings(0)).to.have.length(1);
    expect(coverageWarnings(0)[0]).to.match(/^the verifier quotes no PCR for this agent .*: a PASS says only that its TPM answers/);
    expect(coverageWarnings(1 << 10)).to.deep.equal([
      'no PCR of the boot chain (0-7) is checked: a PASS says nothing of its firmware or boot loader (give --mb-policy, made with `ironlime mb refstate`)',
    ]);
    expect(coverageWarnings(0x43ff & ~(1 << 10))).to.deep.equal(['PCR 10 (IMA) is not checked: a PASS says nothing of the software it runs (give --runtime-policy)']);
    expect(coverageWarnings(1 << 15)).to.have.length(2);
    expect(coverageWarnings(0xffff)).to.deep.equal([]);
  });

  it("reads the mask of a verifier's tpm_policy, and nothing from anything else", () => {
    expect(maskOfTpmPolicy('{"mask":"0x400"}')).to.equal(0x400);
    expect(maskOfTpmPolicy('{"15":["00"],"mask":"0x0"}')).to.equal(0);
    for (const odd of [undefined, 7, '', 'not json', '{}', '{"mask":400}', '{"mask":"0x1234567"}', 'null']) {
      expect(maskOfTpmPolicy(odd), String(odd)).to.equal(undefined);
    }
  });
});
