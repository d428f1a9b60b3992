import { compileExcludes } from '../lib/ima/exclude-matcher.js';
import { compilePythonPatterns, translateWithinBudget } from '../lib/python-regex/linear-regex.js';
import { MatchAllowance } from '../lib/python-regex/match-allowance.js';
import { ROUND_MATCH_ALLOWANCE_NS } from '../lib/verifier/round-match-allowance.js';
import type { Benchmark } from './benchmark.js';
import { REAL_SHAPED_EXCLUDES, realShapedPaths } from './real-shaped-excludes.js';

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
/**
 * Rule classes that keep hundreds of states live per rule on a mixed path, so re2js's lazy DFA gives
 * up, each with the path length it was measured on (docs/ima.md). `[^X]*.{1000}b`, the class the
 * estimate was first set by, is not among them: re2js runs it far faster than these.
 */
const CLASSES: Readonly<Record<string, { readonly rule: (i: number) => string; readonly pathLength: number }>> = {
  '.*.{500}xN': { rule: (i) => `.*.{500}x${i}`, pathLength: 1000 },
  '.*[a-z0-9_]{500}xN': { rule: (i) => `.*[a-z0-9_]{500}x${i}`, pathLength: 1000 },
};
/** Units of rules per class: enough that one run takes tens of ms. */
const UNITS = 20_000;
const RUNS = 5;

/**
 * `npm run bench -- match-estimate`: what re2js really takes per unit of the match allowance's
 * estimate (lib/python-regex/match-allowance.ts: program cost × (text length + 1)) on its slowest
 * rule classes, next to `MatchAllowance.NS_PER_UNIT`. A run that goes ahead cannot be stopped, so
 * `NS_PER_UNIT` must stay above the slowest figure with a margin for a loaded machine. Times are
 * this process's CPU time (process.cpuUsage), the fastest and the median of `RUNS` runs on a mixed
 * path. Then what a legitimately large first round spends of the verifier's
 * round allowance: 50,000 real-shaped paths against 50 real-shaped excludes (each path matched).
 */
export const matchEstimateBenchmark: Benchmark = {
  name: 'match-estimate',
  description: 're2js nanoseconds per unit of the match allowance estimate, slowest rule classes',
  async run() {
    process.stdout.write(`NS_PER_UNIT ${MatchAllowance.NS_PER_UNIT}; ${RUNS} runs each\n`);
    for (const [name, { rule, pathLength }] of Object.entries(CLASSES)) {
      const text = `/${Array.from({ length: pathLength - 1 }, (_, i) => CHARS[(i * 7 + 1) % CHARS.length]).join('')}`;
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
        `${name.padEnd(20)} ${rules.length} rules, ${units} units, ${text.length}-character path: fastest ${(perUnit[0] ?? 0).toFixed(2)} ns a unit, median ${median.toFixed(2)} ` +
          `(${((median / MatchAllowance.NS_PER_UNIT) * 100).toFixed(0)} % of NS_PER_UNIT)\n`,
      );
    }
    const isExcluded = compileExcludes(REAL_SHAPED_EXCLUDES);
    const paths = realShapedPaths(50_000);
    for (let run = 0; run < RUNS; run += 1) {
      const allowance = new MatchAllowance(ROUND_MATCH_ALLOWANCE_NS);
      for (const path of paths) isExcluded(path, allowance);
      process.stdout.write(
        `50,000 real-shaped paths, ${REAL_SHAPED_EXCLUDES.length} real-shaped excludes: ${allowance.runs} runs, ` +
          `${(allowance.spent / 1e6).toFixed(0)} ms (${((allowance.spent / ROUND_MATCH_ALLOWANCE_NS) * 100).toFixed(0)} % of the round allowance)\n`,
      );
    }
  },
};
