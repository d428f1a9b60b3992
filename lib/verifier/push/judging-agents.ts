/**
 * Per agent, how many of its evidence submissions this process is judging now. A count, not a set:
 * of two PATCHes judged at once (the issued attestation's answer and a read-back of the same one), the
 * first to finish must not make the agent look idle while the other is still being judged.
 */
export class JudgingAgents {
  private readonly counts = new Map<string, number>();

  has(agentId: string): boolean {
    return this.counts.has(agentId);
  }

  begin(agentId: string): void {
    this.counts.set(agentId, (this.counts.get(agentId) ?? 0) + 1);
  }

  end(agentId: string): void {
    const left = (this.counts.get(agentId) ?? 1) - 1;
    if (left > 0) this.counts.set(agentId, left);
    else this.counts.delete(agentId);
  }
}
