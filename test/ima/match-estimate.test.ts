import { expect } from 'chai';
import { compilePythonPatterns, translateWithinBudget } from '../../lib/python-regex/linear-regex.js';
import { MatchAllowance, MatchAllowanceExceeded } from '../../lib/python-regex/match-allowance.js';

/**
 * The match allowance's arithmetic, without timing anything: a run is estimated at the joined
 * program's cost × (text length + 1) units, `NS_PER_UNIT` each, and refused before it starts when
 * that could pass what is left. What re2js really takes per unit is measured by
 * `npm run bench -- match-estimate` (docs/ima.md), not here: the CI machine is shared.
 */
describe('the match allowance\'s estimate', () => {
  const rules = ['.*.{500}x0', '[^a]*.{1000}b', '/tmp/.*'];
  const units = rules.reduce((sum, rule) => sum + translateWithinBudget(rule, 'prefix').cost, 0);
  const matches = compilePythonPatterns(rules, 'prefix');

  it('charges a run the joined program\'s cost × (text length + 1)', () => {
    const charged: number[] = [];
    const recorder = { run: <T>(wanted: number, engine: () => T): T => { charged.push(wanted); return engine(); } } as unknown as MatchAllowance;
    for (const text of ['', '/x', `/${'y'.repeat(999)}`]) {
      matches(text, recorder);
    }
    expect(charged).to.deep.equal([units * 1, units * 3, units * 1001]);
  });

  it('refuses, before running it, a run whose estimate at NS_PER_UNIT would pass what is left; a run that fits goes ahead', () => {
    const text = `/${'y'.repeat(999)}`;
    const estimateNs = units * (text.length + 1) * MatchAllowance.NS_PER_UNIT;
    let engineRuns = 0;
    const allowance = new MatchAllowance(estimateNs - 1);
    const refused = (() => {
      try {
        allowance.run(units * (text.length + 1), () => (engineRuns += 1));
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).to.be.instanceOf(MatchAllowanceExceeded);
    expect((refused as MatchAllowanceExceeded).wantedNs).to.equal(estimateNs);
    expect([engineRuns, allowance.runs, allowance.spent]).to.deep.equal([0, 0, 0]);
    const roomy = new MatchAllowance(estimateNs);
    expect(matches(text, roomy)).to.equal(false);
    expect(roomy.runs).to.equal(1);
    expect(roomy.spent).to.be.above(0);
  });

  it('NS_PER_UNIT is 20 (the slowest class measured by the benchmark at 9–14, docs/ima.md)', () => {
    expect(MatchAllowance.NS_PER_UNIT).to.equal(20);
  });
});

/**
 * What a run took is read on the wall clock, which also counts time the thread was preempted: the
 * allowance spends the smaller of that and the process's CPU time since the first run. A run whose
 * thread waits without using the CPU (`Atomics.wait`, as a preempted thread does) spends next to
 * nothing; a run that uses the CPU spends all of it.
 */
describe('the match allowance on a loaded host', () => {
  const LIMIT_NS = 100e6;
  const waitMs = (ms: number): void => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  };
  /**
   * Keeps the thread busy until the process has used `ms` of CPU time (a preempted loop would use less)
   * and `ms` of wall time have passed: the process's CPU time counts its other threads too (GC, a worker
   * pool left by another test file in this mocha worker), which on two cores could reach `ms` in less
   * wall time, and the allowance charges the smaller of the two.
   */
  const busyMs = (ms: number): void => {
    const start = process.cpuUsage();
    const startedAt = performance.now();
    for (let used = 0; used < ms * 1000 || performance.now() - startedAt < ms; ) {
      const { user, system } = process.cpuUsage(start);
      used = user + system;
    }
  };

  it('does not charge the time a run\'s thread waited off the CPU: the next run goes ahead', () => {
    const allowance = new MatchAllowance(LIMIT_NS);
    allowance.run(1, () => waitMs(300));
    expect(allowance.spent).to.be.below(LIMIT_NS / 2);
    expect(() => allowance.run(1, () => undefined)).not.to.throw();
    expect(allowance.runs).to.equal(2);
  });

  it('charges the CPU a run used: past the limit, the next run is refused before it starts', () => {
    const allowance = new MatchAllowance(LIMIT_NS);
    allowance.run(1, () => busyMs(150));
    expect(allowance.spent).to.be.at.least(150e6);
    let ran = false;
    expect(() => allowance.run(1, () => (ran = true))).to.throw(MatchAllowanceExceeded);
    expect([ran, allowance.runs]).to.deep.equal([false, 1]);
  });
});
