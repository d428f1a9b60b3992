import { expect } from 'chai';
import { runTarget } from '../../lib/fuzz/fuzz-runner.js';
import { FUZZ_TARGETS } from '../../lib/fuzz/fuzz-targets.js';

/**
 * A small slice of every fuzz target (`npm run fuzz` runs the long ones): 200 deterministic inputs
 * each — the seeds (real vectors and the inputs of issue 11) first, then mutations — must each be
 * accepted or refused with a typed error. A hang shows up as this test's timeout.
 */
describe('fuzz: a slice of every target (issue 11, keep it fixed)', function () {
  it('covers every untrusted-input family named by issue 11', function () {
    expect(FUZZ_TARGETS.map((t) => t.name)).to.include.members([
      'tpm-public', 'tpm-attest', 'tpm-signature', 'pcr-blob', 'quote-string', 'ek-cert', 'ima-ascii', 'ima-binary',
      'event-log', 'refstate', 'runtime-policy', 'http-registrar', 'http-verifier', 'http-agent',
    ]);
  });

  for (const target of FUZZ_TARGETS) {
    it(`${target.name}: 200 inputs, no untyped exception`, function () {
      expect(target.seeds().length, 'seeds').to.be.greaterThan(0);
      const report = runTarget(target, { seed: 20261202, count: 200 });
      expect(report.findings, JSON.stringify(report.findings.slice(0, 3))).to.deep.equal([]);
      expect(report.inputs).to.equal(200);
    });
  }
});
