import { excludeMatchAllowance } from '../ima/exclude-match-allowance.js';
import type { MatchAllowance } from '../python-regex/match-allowance.js';

/**
 * What one POST /verify/evidence may spend running its policy's exclude rules: 2 s of matching
 * (lib/python-regex/match-allowance.ts). The review's hostile policy (225 × `[^X]*.{1000}b`) is
 * refused before its first 3,000-character path runs (about 3 s at worst); a real list uses well
 * under 10 % of it (docs/ima.md, measured: 10,738 paths against 50 rules, one starting `.*`, 0.1 s).
 */
export const EVIDENCE_MATCH_ALLOWANCE_NS = 2_000_000_000;

/**
 * A fresh allowance for one request's excludes; passing it refuses the policy as too costly for this
 * request (400). The refstate's `kernel_cmdline` gets `EVIDENCE_MATCH_ALLOWANCE_NS` of its own, in the
 * engine: passing that makes the evidence invalid (`measured_boot.policy.match_allowance_exceeded`).
 */
export function evidenceMatchAllowance(limitNs = EVIDENCE_MATCH_ALLOWANCE_NS): MatchAllowance {
  return excludeMatchAllowance(limitNs);
}
