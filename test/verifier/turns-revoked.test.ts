import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { turnsRevoked } from '../../lib/verifier/failure-announcer.js';

/**
 * The transition that is announced (Keylime's revocation notice) and that a push verdict is stored at
 * once for: into FAILED or INVALID_QUOTE from any other state, never from one of them to the other.
 */
describe('verifier: which verdict turns an agent failed', function () {
  const states = Object.values(OperationalState);
  const failed: readonly OperationalState[] = [OperationalState.FAILED, OperationalState.INVALID_QUOTE];

  it('is a move into FAILED or INVALID_QUOTE from a state that is neither, for every pair of states', function () {
    for (const before of states) {
      for (const after of states) {
        expect(turnsRevoked(before, after), `${before} → ${after}`).to.equal(!failed.includes(before) && failed.includes(after));
      }
    }
  });

  it('is not a failed agent failing again, nor an INVALID_QUOTE agent turning FAILED', function () {
    expect(turnsRevoked(OperationalState.FAILED, OperationalState.FAILED)).to.equal(false);
    expect(turnsRevoked(OperationalState.INVALID_QUOTE, OperationalState.FAILED)).to.equal(false);
    expect(turnsRevoked(OperationalState.GET_QUOTE, OperationalState.INVALID_QUOTE)).to.equal(true);
    expect(turnsRevoked(OperationalState.START, OperationalState.FAILED)).to.equal(true);
  });
});
