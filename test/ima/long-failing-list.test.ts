import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { emptyRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { imaNgEntry } from '../../lib/tpm-access/ima-ng-template.js';

/** Lines past what `push(...failures)` could take as arguments (some 120,000 on a default stack). */
const LINES = 300_000;

/**
 * One failure per line outside the policy: an agent's list of 300,000 such lines (about 40 MB, under the
 * 64 MiB a reply may be) made `verifyImaList` throw a RangeError (maximum call stack size exceeded), so
 * the round failed as `internal.verifier.exception` and polling stopped, the real failures unnamed.
 */
describe('verifyImaList: a list with hundreds of thousands of lines outside the policy', function () {
  this.timeout(120_000);

  it('reports one failure per line, not a RangeError', () => {
    const digest = new Uint8Array(createHash('sha256').update('x').digest());
    const text = Array.from({ length: LINES }, (_, i) => `${imaNgEntry('sha256', digest, `/x/${i}`).line}\n`).join('');
    const result = verifyImaList({ listText: text, startEntry: 0, policy: compileRuntimePolicy(emptyRuntimePolicy()) });
    expect(result.valid).to.equal(false);
    expect(result.failures).to.have.length(LINES);
    expect(result.failures[LINES - 1]).to.include({ eventId: IMA_EVENTS.notInAllowlist, line: LINES, path: `/x/${LINES - 1}` });
  });
});
