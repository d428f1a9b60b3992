import { compilePythonPatterns, translateWithinBudget } from '../lib/python-regex/linear-regex.js';
import { MatchAllowance } from '../lib/python-regex/match-allowance.js';
import type { Benchmark } from './benchmark.js';

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** Rule classes that keep hundreds of states live per rule on a mixed path, so re2js's lazy DFA gives up. */
const CLASSES: Readonly<Record<string, (i: number) => string>> = {
  '.*.{500}xN': (i) => `.*.{500}x${i}`,
  '.*[a-z0-9_]{500}xN': (i) => `.*[a-z0-9_]{500}x${i}`,
  '[^X]*.{1000}b': (i) => `[^${CHARS[i % 26] ?? 'a'}]*.{1000}b`,
};
/** Units of rules per class: enough that one run takes tens of ms. */
const UNITS = 20_000;
const RUNS = 5;

/**
 * `npm run bench -- match-estimate`: what re2js really takes per unit of the match allowance's
 * estimate (lib/python-regex/match-allowance.ts: program cost × (text length + 1)) on its slowest
 * rule classes, next to `MatchAllowance.NS_PER_UNIT`. A run that goes ahead cannot be stopped, so
 * `NS_PER_UNIT` must stay above the slowest figure with a margin for a loaded machine. Times are
 * this process's CPU time (process.cpuUsage), the fastest and the median of `RUNS` runs on a
 * 1,000-character mixed path.
 */
export const matchEstimateBenchmark: Benchmark = {
  name: 'match-estimate',
  description: 're2js nanoseconds per unit of the match allowance estimate, slowest rule classes',
  async run() {
    const text = `/${Array.from({ length: 999 }, (_, i) => CHARS[(i * 7 + 1) % CHARS.length]).join('')}`;
    process.stdout.write(`NS_PER_UNIT ${MatchAllowance.NS_PER_UNIT}; ${text.length}-character path; ${RUNS} runs each\n`);
    for (const [name, rule] of Object.entries(CLASSES)) {
      const rules: string[] = [];
      let units = 0;
      for (let i = 0; units < UNITS; i += 1) {
        rules.push(rule(i));
        units += translateWithinBudget(rule(i), 'prefix').cost;
      }
      const matches = compilePythonPatterns(rules, 'prefix');
      const perUnit = Array.from({ length: RUNS }, () => {
        const started = process.cpuUsage();
        matches(text);
        const used = process.cpuUsage(started);
        return ((used.user + used.system) * 1000) / (units * (text.length + 1));
      }).sort((a, b) => a - b);
      const median = perUnit[Math.floor(RUNS / 2)] ?? 0;
      process.stdout.write(
        `${name.padEnd(20)} ${rules.length} rules, ${units} units: fastest ${(perUnit[0] ?? 0).toFixed(2)} ns a unit, median ${median.toFixed(2)} ` +
          `(${((median / MatchAllowance.NS_PER_UNIT) * 100).toFixed(0)} % of NS_PER_UNIT)\n`,
      );
    }
  },
};
