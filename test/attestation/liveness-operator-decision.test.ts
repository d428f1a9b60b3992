import { expect } from 'chai';
import { livenessFreshnessBound } from '../../lib/attestation/freshness.js';
import { livenessOperatorStatus } from '../../lib/attestation/liveness-operator-decision.js';

const NOW = 1_796_000_000;

describe('liveness operator status: no stale alive', function () {
  it('derives the bound as two intervals plus maxMisses checks, each an interval and a timeout apart, unless one is given', function () {
    expect(livenessFreshnessBound({ intervalSeconds: 2, timeoutSeconds: 60, maxMisses: 5 })).to.equal(2 * 2 + 5 * (2 + 60));
    expect(livenessFreshnessBound({ intervalSeconds: 2, timeoutSeconds: 60, maxMisses: 5, bound: 400 })).to.equal(400);
  });

  it('never goes below two sweeps that each wait for a check timing out (2 × (interval + timeout)), given or derived', function () {
    // staleAfter 10 s is a TPM agent's bound; a sweep with one blackholed node lasts 60 s, so a healthy node's
    // answers come up to 2 + 2 × 60 s apart: it must not show stale for that.
    expect(livenessFreshnessBound({ intervalSeconds: 2, timeoutSeconds: 60, maxMisses: 5, bound: 10 })).to.equal(2 * (2 + 60));
    expect(livenessFreshnessBound({ intervalSeconds: 2, timeoutSeconds: 60, maxMisses: 0 })).to.equal(2 * (2 + 60));
    expect(livenessFreshnessBound({ intervalSeconds: 2, timeoutSeconds: 60, maxMisses: 1 })).to.equal(2 * (2 + 60));
  });

  it('shows an alive within the bound as alive, and one older, never seen or seen ahead as pending and stale', function () {
    const at = (lastSeen: number | null) => livenessOperatorStatus({ status: 'alive', lastSeen }, NOW, 100);
    expect(at(NOW - 100)).to.deep.equal({ status: 'alive', stale: false });
    expect(at(NOW - 102)).to.deep.equal({ status: 'pending', stale: true });
    expect(at(NOW - 86_400)).to.deep.equal({ status: 'pending', stale: true });
    expect(at(null)).to.deep.equal({ status: 'pending', stale: true });
    expect(at(NOW + 5)).to.deep.equal({ status: 'alive', stale: false });
    expect(at(NOW + 6)).to.deep.equal({ status: 'pending', stale: true });
  });

  it('leaves every other status as stored, however old its last answer', function () {
    for (const status of ['pending', 'unreachable', 'failed'] as const) {
      expect(livenessOperatorStatus({ status, lastSeen: NOW - 86_400 }, NOW, 100)).to.deep.equal({ status, stale: false });
    }
  });
});
