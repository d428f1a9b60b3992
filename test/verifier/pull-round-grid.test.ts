import { expect } from 'chai';
import { pullRoundGrid, pullRoundSlackMs } from '../../lib/verifier/pull-round-grid.js';

describe('pullRoundGrid (the pull loop\'s grid)', () => {
  it('caps a slot at the capacity of the agents polled at the time of each ask', () => {
    let agents = 1_000;
    // now 1,000 ms: a delay of 10 ms asks for slot 51; at 2 s and 1,000 agents a slot takes 20 rounds.
    const { grid, slackMs, capacity } = pullRoundGrid({ slotMs: 20, intervalMs: 2_000, agents: () => agents, now: () => 1_000 });
    try {
      expect(slackMs).to.equal(pullRoundSlackMs(2_000, 20));
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

  it('leaves rounds slack only where the slot\'s rounding and the event loop\'s lag still fit in the late bound', () => {
    for (const intervalMs of [200, 400, 500, 1_000, 2_000, 60_000, 3_600_000]) {
      const slackMs = pullRoundSlackMs(intervalMs, 20);
      expect(slackMs, `${intervalMs} ms`).to.be.within(0, 0.05 * intervalMs);
      expect(slackMs === 0 || slackMs + 2 * 20 <= 0.1 * intervalMs, `${intervalMs} ms`).to.equal(true);
    }
    expect([400, 500, 1_000, 2_000].map((intervalMs) => pullRoundSlackMs(intervalMs, 20))).to.deep.equal([0, 10, 50, 100]);
  });

  it('at a 0.4 s interval, starts a round asked for a full slot at most a slot late, a slot short of the 40 ms late bound', () => {
    // 20 agents at 0.4 s: two rounds a slot. Due at 1,001 ms, the worst rounding: slot 51 ends at 1,020 ms.
    const { grid, slackMs } = pullRoundGrid({ slotMs: 20, intervalMs: 400, agents: () => 20, now: () => 1_000 });
    try {
      const startDelays = Array.from({ length: 3 }, () => grid.at(1, () => undefined, slackMs).slot * 20 - 1_001);
      expect(startDelays).to.deep.equal([19, 19, 19]);
      expect(Math.max(...startDelays) + 20).to.be.at.most(0.1 * 400);
    } finally {
      grid.close();
    }
  });
});
