import { expect } from 'chai';
import { Counter, Histogram, Registry } from 'prom-client';
import { ScrapedHistogram } from '../../lib/verifier/scraped-histogram.js';
import { VerifierMetrics } from '../../lib/verifier/verifier-metrics.js';

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Values on the bounds, between them, 0, tiny and huge ones, in a fixed pseudo-random order. */
function values(count: number): number[] {
  let seed = 7;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const out: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const pick = next();
    if (pick < 0.2) out.push(BOUNDS[Math.floor(next() * BOUNDS.length)] as number);
    else if (pick < 0.25) out.push(0);
    else if (pick < 0.3) out.push(12 + next() * 1e6);
    else out.push(next() * next() * 3);
  }
  return out;
}

/** The lines of `text` that belong to `name` (its HELP, TYPE and samples), in order. */
function linesOf(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(name) || line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `));
}

describe('verifier metrics read at scrape time', () => {
  it('a scraped histogram writes the very text prom-client\'s histogram writes for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const scraped = new ScrapedHistogram('h_seconds', 'A help.', BOUNDS, ours);
    const reference = new Histogram({ name: 'h_seconds', help: 'A help.', buckets: BOUNDS, registers: [theirs] });
    expect(await ours.metrics()).to.equal(await theirs.metrics());
    const all = values(3_000);
    for (const [i, value] of all.entries()) {
      scraped.observe(value);
      reference.observe(value);
      if (i % 1_000 === 999) expect(await ours.metrics()).to.equal(await theirs.metrics());
    }
    expect(() => scraped.observe(Number.NaN)).to.throw(TypeError);
    expect(() => reference.observe(Number.NaN)).to.throw(TypeError);
    expect(() => scraped.observe(Number.POSITIVE_INFINITY)).to.throw(TypeError);
    const text = await ours.metrics();
    expect(text).to.equal(await theirs.metrics());
    expect(text).to.match(/^h_seconds_count 3000$/m);
    expect(text).to.match(/^h_seconds_bucket\{le="0\.001"\} \d+$/m);
  });

  it('rounds by outcome, durations and start delays come out as prom-client counted them, across scrapes', async () => {
    const metrics = new VerifierMetrics(2, { agentStates: () => [], unstoredRounds: () => 0, slotCapacity: () => undefined });
    const reference = new Registry();
    const rounds = new Counter({ name: 'ironlime_verifier_rounds_total', help: 'x', labelNames: ['outcome'], registers: [reference] });
    const duration = new Histogram({ name: 'ironlime_verifier_round_duration_seconds', help: 'x', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [reference] });
    const delay = new Histogram({ name: 'ironlime_verifier_round_start_delay_seconds', help: 'x', buckets: BOUNDS, registers: [reference] });
    const same = async (): Promise<void> => {
      const text = (await metrics.exposition()).text;
      const expected = await reference.metrics();
      for (const name of ['ironlime_verifier_rounds_total', 'ironlime_verifier_round_duration_seconds', 'ironlime_verifier_round_start_delay_seconds']) {
        const samples = (of: string): string[] => linesOf(of, name).filter((line) => !line.startsWith('#'));
        expect(samples(text), name).to.deep.equal(samples(expected));
      }
    };
    await same();
    const outcomes = ['none', 'pass', 'pass', 'retry', 'pass'] as const;
    const later = ['fail', 'pass', 'none'] as const;
    const all = values(400);
    for (const [i, value] of all.entries()) {
      // `fail` first comes after a scrape: its line follows the others, as prom-client orders a new series.
      const outcome = i < 200 ? outcomes[i % outcomes.length] : later[i % later.length];
      metrics.roundStarted(value);
      delay.observe(value);
      metrics.roundDecided(outcome as 'pass', value / 3);
      rounds.inc({ outcome: outcome as string });
      duration.observe(value / 3);
      if (i === 199 || i === 300) await same();
    }
    await same();
    const text = (await metrics.exposition()).text;
    expect(linesOf(text, 'ironlime_verifier_rounds_total').filter((line) => !line.startsWith('#')).map((line) => line.replace(/ \d+$/, ''))).to.deep.equal([
      'ironlime_verifier_rounds_total{outcome="none"}',
      'ironlime_verifier_rounds_total{outcome="pass"}',
      'ironlime_verifier_rounds_total{outcome="retry"}',
      'ironlime_verifier_rounds_total{outcome="fail"}',
    ]);
    expect(text).to.match(/^ironlime_verifier_round_start_delay_seconds_count 400$/m);
  });
});
