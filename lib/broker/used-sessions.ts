/** Sessions remembered; the set is emptied when full, as the other per-process caches. */
const USED_SESSIONS_LIMIT = 100_000;

/**
 * The RCAR sessions this worker knows to be used: their row in `broker_sessions` exists, because this
 * worker inserted it (attested or burnt) or the claiming statement found it. `/attest` refuses such a
 * session before the appraisal and without a database round trip; a session used through another
 * worker is not known here and is refused by the claiming statement, as before. Forgetting sessions
 * (when full) only costs that fast refusal, never the single use, which the database keeps.
 */
export class UsedSessions {
  private readonly used = new Set<string>();

  has(id: string): boolean {
    return this.used.has(id);
  }

  remember(id: string): void {
    if (this.used.size >= USED_SESSIONS_LIMIT) {
      this.used.clear();
    }
    this.used.add(id);
  }
}
