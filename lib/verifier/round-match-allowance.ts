/**
 * What one pull round or one push evidence round may spend running its agent's policy patterns (the
 * runtime policy's excludes over the round's IMA paths, the refstate's `kernel_cmdline`): 1 s of
 * matching (lib/python-regex/match-allowance.ts), handed to the engine, which fails the round when it
 * would be passed (`ima.policy.match_allowance_exceeded`, `measured_boot.policy.match_allowance_exceeded`).
 * Rounds share the event loop, so this bounds how long one agent's round can hold every other
 * agent's: half the default `quote_interval`. A real first round uses a tenth of it (docs/ima.md:
 * 10,738 paths against 50 real-shaped rules, about 0.1 s); a failed IMA round replays from entry 0,
 * so a list that needs more would fail every round.
 */
export const ROUND_MATCH_ALLOWANCE_NS = 1_000_000_000;
