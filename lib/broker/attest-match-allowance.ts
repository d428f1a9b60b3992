/**
 * What one KBS attestation (`appraiseTpmEvidence`) may spend running the node's policy patterns:
 * the runtime policy's excludes over the paths of the IMA list the node sends (from entry 0, up to
 * `EVIDENCE_LIMITS.imaList`), the refstate's `kernel_cmdline` (lib/python-regex/match-allowance.ts).
 * The quote is checked first, so only a node holding its AK reaches the patterns; a node that is
 * compromised could otherwise hold a broker worker for minutes with long paths against costly
 * excludes. 2 s, as one `POST /verify/evidence` request: a real list from entry 0 uses a tenth of it
 * (docs/ima.md). Passing it refuses the attestation (`ima.policy.match_allowance_exceeded`,
 * `measured_boot.policy.match_allowance_exceeded`).
 */
export const ATTEST_MATCH_ALLOWANCE_NS = 2_000_000_000;
