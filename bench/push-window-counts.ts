/** One verdict of the push window, as read from `verifier_attestation_history`. */
export interface PushVerdictRow {
  readonly agent_id: string;
  readonly outcome: string;
  readonly attempted_at: Date;
  readonly failures: readonly { readonly event_id: string }[];
}

/**
 * The push window's counts from its verdicts (`rows`: from the window's start on, past its end):
 * passing verdicts in the window; failing ones in it of agents not (yet) tampered; and tampered agents
 * detected — as in the pull bench, the agent's first failing verdict after its tampering must name
 * `expectedEvent`. Any failure had counted, so a tampered agent failed for another reason (silence
 * past the push timeout) was reported as detected.
 */
export function pushWindowCounts(
  rows: readonly PushVerdictRow[],
  tampered: ReadonlyMap<string, number>,
  to: Date,
  expectedEvent: string,
): { attestations: number; failures: number; detected: number } {
  const inWindow = rows.filter((row) => row.attempted_at <= to);
  const afterTamper = (row: PushVerdictRow): boolean => row.attempted_at.getTime() >= (tampered.get(row.agent_id) ?? Infinity);
  const firstFailure = new Map<string, PushVerdictRow>();
  for (const row of [...rows].sort((a, b) => a.attempted_at.getTime() - b.attempted_at.getTime())) {
    if (row.outcome !== 'pass' && afterTamper(row) && !firstFailure.has(row.agent_id)) firstFailure.set(row.agent_id, row);
  }
  return {
    attestations: inWindow.filter((row) => row.outcome === 'pass').length,
    failures: inWindow.filter((row) => row.outcome !== 'pass' && !afterTamper(row)).length,
    detected: [...firstFailure.values()].filter((row) => row.failures.some((failure) => failure.event_id === expectedEvent)).length,
  };
}
