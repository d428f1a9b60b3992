/**
 * How long a verdict waits for others to share its transaction (`RoundWriter`'s `batchDelayMs`): a
 * tenth of `quote_interval`, between 20 and 500 ms — 200 ms at Keylime's default 2 s — and at most a
 * tenth of the lease: a verdict waiting to be stored renews its agent's lease only when it is stored,
 * so a window near the lease could let another process take over a healthy agent.
 *
 * Each batch costs the same whatever its size: on PostgreSQL five statements for a pull batch (begin,
 * the rounds, the audit's two, commit) and four for a push one (begin, the take with the rounds and
 * the audit's heads, the audit's records with the attestations' completion, commit:
 * `PushVerdictWriter`), each a round trip, plus one audit signature. So the window sets
 * the database's share of a verdict: at 1,000 pull agents on a 2 s interval, 50 ms gathered about 24
 * verdicts a batch and 200 ms about 95, for about a tenth less verifier CPU per attestation
 * (docs/fleet.md, "Fourteenth pass").
 *
 * What waits meanwhile: a pull pass is stored and shown that much later (a failure is stored at once,
 * `VerdictStore`), and its next round is still timed from the decision, so the cadence does not move;
 * a push agent waits for its 202 and starts its next interval after it, so a tenth keeps its cycle
 * within 10 % (500 ms stretched 50 agents' 2 s cycle to 2.9 s); a push verdict that fails its agent is stored
 * at once too (`PushVerdictWriter`).
 */
export function verdictBatchDelayMs(quoteIntervalSeconds: number, leaseSeconds: number): number {
  return Math.min(500, (leaseSeconds * 1000) / 10, Math.max(20, (quoteIntervalSeconds * 1000) / 10));
}
