import { MatchAllowance } from '../python-regex/match-allowance.js';
import { RuntimePolicyError } from './internal/runtime-policy-error.js';

/**
 * An allowance of `limitNs` for running a policy's exclude rules (lib/python-regex/match-allowance.ts);
 * passing it throws `RuntimePolicyError` on `excludes`: the policy is too costly to evaluate here.
 */
export function excludeMatchAllowance(limitNs: number): MatchAllowance {
  return new MatchAllowance(limitNs, (wantedNs, allowance) => {
    throw new RuntimePolicyError(
      'excludes',
      `too costly to evaluate for this request: matching the IMA list's paths could take over ${ms(limitNs)} ms ` +
        `(${ms(allowance.spent)} ms spent in ${allowance.runs} runs; the next could take ${ms(wantedNs)} ms)`,
    );
  });
}

function ms(ns: number): number {
  return Math.round(ns / 1e6);
}
