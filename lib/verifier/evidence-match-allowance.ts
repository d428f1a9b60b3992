import { RuntimePolicyError } from '../ima/internal/runtime-policy-error.js';
import { MatchAllowance } from '../python-regex/match-allowance.js';

/**
 * What one POST /verify/evidence may spend running its policy's exclude rules: 2 s of matching
 * (lib/python-regex/match-allowance.ts). The review's hostile policy (225 × `[^X]*.{1000}b`) is
 * refused before its first 3,000-character path runs (about 3 s at worst); a real list uses well
 * under 10 % of it (docs/ima.md, measured: 10,738 paths against 50 rules, one starting `.*`, 0.1 s).
 */
export const EVIDENCE_MATCH_ALLOWANCE_NS = 2_000_000_000;

/** A fresh allowance for one request; passing it refuses the policy as too costly for this request (400). */
export function evidenceMatchAllowance(limitNs = EVIDENCE_MATCH_ALLOWANCE_NS): MatchAllowance {
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
