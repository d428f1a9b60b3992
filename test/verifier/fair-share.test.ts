import { expect } from 'chai';
import { decideShare } from '../../lib/verifier/fair-share.js';

describe('verifier fair share (decideShare)', function () {
  it('a single process (or one whose beat is not visible yet) claims every agent', function () {
    expect(decideShare({ liveProcesses: 1, claimableAgents: 1000 }, 0)).to.deep.include({ claim: 1000, release: 0, share: 1000, held: 0 });
    expect(decideShare({ liveProcesses: 0, claimableAgents: 10 }, 4)).to.deep.include({ claim: 6, release: 0 });
  });

  it('a second process makes the first let go of half, and the second claim it', function () {
    expect(decideShare({ liveProcesses: 2, claimableAgents: 1000 }, 1000)).to.deep.include({ claim: 0, release: 500 });
    expect(decideShare({ liveProcesses: 2, claimableAgents: 1000 }, 0)).to.deep.include({ claim: 500, release: 0 });
  });

  it('rounds the share up, so the shares cover every agent and nobody gives back what another must return', function () {
    const shares = [decideShare({ liveProcesses: 3, claimableAgents: 10 }, 0), decideShare({ liveProcesses: 3, claimableAgents: 10 }, 4)];
    expect(shares).to.deep.equal([{ claim: 4, release: 0, share: 4, held: 0 }, { claim: 0, release: 0, share: 4, held: 4 }]);
    expect(3 * Math.ceil(10 / 3)).to.be.at.least(10);
  });

  it('no agents: nothing to claim, everything held is released', function () {
    expect(decideShare({ liveProcesses: 2, claimableAgents: 0 }, 3)).to.deep.include({ claim: 0, release: 3 });
  });
});
