import { expect } from 'chai';
import { compileExcludes } from '../../lib/ima/exclude-matcher.js';
import { RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';
import { EVIDENCE_MATCH_ALLOWANCE_NS, evidenceMatchAllowance } from '../../lib/verifier/evidence-match-allowance.js';
import { rustKeylimeLog } from '../ima/ima-vectors.js';
import { REAL_SHAPED_EXCLUDES as REAL_EXCLUDES } from '../../bench/real-shaped-excludes.js';

describe('POST /verify/evidence match allowance (F4c)', () => {
  it('a real list (rust-keylime\'s 826 paths, 13 times: 10,738) against 50 real-shaped rules uses under 10 % of it', () => {
    const base = rustKeylimeLog().split('\n').filter((line) => line !== '').map((line) => line.split(' ').slice(4).join(' '));
    const paths = Array.from({ length: 13 }, (_, copy) => base.map((p) => (copy === 0 ? p : `/usr/lib/x86_64-linux-gnu/pkg${copy}${p}`))).flat();
    const isExcluded = compileExcludes(REAL_EXCLUDES);
    const allowance = evidenceMatchAllowance();
    const excluded = paths.filter((p) => isExcluded(p, allowance)).length;
    expect(allowance.runs).to.equal(paths.length);
    expect(excluded).to.be.below(paths.length);
    expect(allowance.spent).to.be.below(EVIDENCE_MATCH_ALLOWANCE_NS / 10);
  });

  it('refuses a run whose worst case would pass it, before running it (a run that fits still goes ahead)', () => {
    const isExcluded = compileExcludes(['[^a]*.{1000}b']);
    const allowance = evidenceMatchAllowance(1_000_000);
    expect(() => isExcluded(`/${'x'.repeat(1000)}`, allowance)).to.throw(RuntimePolicyError, /^runtime policy: excludes: too costly to evaluate for this request/);
    expect(allowance.runs).to.equal(0);
    expect(() => isExcluded('/x', allowance)).not.to.throw();
    expect(allowance.runs).to.equal(1);
  });
});
