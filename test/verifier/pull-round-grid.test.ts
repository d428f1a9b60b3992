import { expect } from 'chai';
import { pullRoundGrid, pullRoundSlackMs } from '../../lib/verifier/pull-round-grid.js';

describe('pullRoundGrid (the pull loop\'s grid)', () => {
  it('caps a slot at the capacity of the agents polled at the time of each ask', () => {
    let agents = 1_000;
    // now 1,000 ms: a delay of 10 ms asks for slot 51; at 2 s and 1,000 agents a slot takes 20 rounds.
    const { grid, slackMs, capacity } = pullRoundGrid({ slotMs: 20, intervalMs: 2_000, agents: () => agents, now: () => 1_000 });
    try {
      expect(slackMs).to.equal(pullRoundSlackMs(2_000));
      const ask = (): number => grid.at(10, () => undefined, slackMs).slot;
      expect(Array.from({ length: 20 }, ask).every((slot) => slot === 51)).to.equal(true);
      expect(ask()).to.equal(52);
      agents = 2_000;
      expect(capacity()).to.equal(40);
      expect(ask()).to.equal(51);
      // Slot 51 holds 22 and slot 52 one: at 100 agents two a slot, so 52 takes one more, then 53.
      agents = 100;
      expect(capacity()).to.equal(2);
      expect([ask(), ask()]).to.deep.equal([52, 53]);
    } finally {
      grid.close();
    }
  });
});
