import { expect } from 'chai';
import { compilePythonPatterns, translateWithinBudget } from '../../lib/python-regex/linear-regex.js';
import { MatchAllowance } from '../../lib/python-regex/match-allowance.js';

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const mixed = (n: number, length: number): string => Array.from({ length }, (_, i) => CHARS[(i * 7 + n) % CHARS.length]).join('');

/**
 * The match allowance refuses a run whose estimate (program cost × (text length + 1) ×
 * `NS_PER_UNIT`) could pass what is left; a run that goes ahead cannot be stopped, so the estimate
 * must cover what re2js really takes where its lazy DFA gives up. These classes keep hundreds of
 * states live per rule on a mixed path; a run's time is its process CPU time, the fastest of three
 * (the machine is shared: wall time would count other processes' turns).
 */
describe('the match allowance\'s estimate covers re2js\'s worst classes', function () {
  this.timeout(30_000);
  const classes: Record<string, (i: number) => string> = {
    '.*.{500}xN': (i) => `.*.{500}x${i}`,
    '.*[a-z0-9_]{500}xN': (i) => `.*[a-z0-9_]{500}x${i}`,
    '[^X]*.{1000}b': (i) => `[^${CHARS[i % 26] ?? 'a'}]*.{1000}b`,
  };
  for (const [name, rule] of Object.entries(classes)) {
    it(`${name}: nanoseconds per unit and character under NS_PER_UNIT`, () => {
      const rules: string[] = [];
      let units = 0;
      for (let i = 0; units < 20_000; i += 1) {
        rules.push(rule(i));
        units += translateWithinBudget(rule(i), 'prefix').cost;
      }
      const matches = compilePythonPatterns(rules, 'prefix');
      const text = `/${mixed(1, 999)}`;
      const runs = [0, 1, 2].map(() => {
        const started = process.cpuUsage();
        matches(text);
        const used = process.cpuUsage(started);
        return (used.user + used.system) * 1000;
      });
      const nsPerUnit = Math.min(...runs) / (units * (text.length + 1));
      expect(nsPerUnit, `${nsPerUnit.toFixed(2)} ns a unit`).to.be.below(MatchAllowance.NS_PER_UNIT);
    });
  }
});
