/** Sessions remembered; when full, expired ones are dropped, and if none has expired, all of them. */
const USED_SESSIONS_LIMIT = 100_000;

/**
 * The RCAR sessions this worker knows to be used: their row in `broker_sessions` exists, because this
 * worker inserted it (attested or burnt) or the claiming statement found it. `/attest` refuses such a
 * session before the appraisal and without a database round trip; a session used through another
 * worker is not known here and is refused by the claiming statement, as before. Forgetting an entry
 * (the limit) only costs that fast refusal, never the single use, which the database keeps.
 */
export class UsedSessions {
  /** Session id → Unix milliseconds after which its cookie no longer opens. */
  private readonly used = new Map<string, number>();

  has(id: string): boolean {
    return this.used.has(id);
  }

  remember(id: string, expiresAt: number, nowMs: number): void {
    if (this.used.size >= USED_SESSIONS_LIMIT) {
      for (const [usedId, usedExpiresAt] of this.used) {
        if (usedExpiresAt <= nowMs) this.used.delete(usedId);
      }
      if (this.used.size >= USED_SESSIONS_LIMIT) this.used.clear();
    }
    this.used.set(id, expiresAt);
  }
}
