import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { RoundStartGrid } from '../../lib/verifier/round-start-grid.js';
import { VerifierMetrics } from '../../lib/verifier/verifier-metrics.js';

describe('rounds started per slot (metric)', () => {
  it('the grid tells how many rounds each slot started, the cancelled ones left out', async () => {
    const counts: number[] = [];
    const grid = new RoundStartGrid(20, () => 5_000, { started: (rounds) => counts.push(rounds) });
    const cancelled = grid.at(0, () => undefined);
    grid.at(0, () => undefined);
    grid.at(0, () => undefined);
    grid.at(25, () => undefined);
    grid.cancel(cancelled);
    await sleep(80);
    expect(counts).to.deep.equal([2, 1]);
  });

  it('counts each slot once in the histogram, in buckets doubling from 1 to 2,048 rounds', async () => {
    const metrics = new VerifierMetrics(2, { agentStates: () => [], unstoredRounds: () => 0, slotCapacity: () => 20 });
    for (const rounds of [1, 12, 12, 180, 250, 3_000]) {
      metrics.slotStarted(rounds);
    }
    const { text } = await metrics.exposition();
    expect(text).to.match(/^# TYPE ironlime_verifier_rounds_per_slot histogram$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="1"\} 1$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="8"\} 1$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="16"\} 3$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="256"\} 5$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="2048"\} 5$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_bucket\{le="\+Inf"\} 6$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_sum 3455$/m);
    expect(text).to.match(/^ironlime_verifier_rounds_per_slot_count 6$/m);
  });

  it('shows a slot\'s capacity now, as the grid applies it', async () => {
    let capacity = 20;
    const metrics = new VerifierMetrics(2, { agentStates: () => [], unstoredRounds: () => 0, slotCapacity: () => capacity });
    expect((await metrics.exposition()).text).to.match(/^ironlime_verifier_slot_capacity 20$/m);
    capacity = 40;
    expect((await metrics.exposition()).text).to.match(/^ironlime_verifier_slot_capacity 40$/m);
  });
});
