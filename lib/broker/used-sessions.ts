import { BoundedCache } from '../cache/bounded-cache.js';

/** Sessions remembered; the oldest remembered is forgotten first. */
const USED_SESSIONS_LIMIT = 100_000;

/**
 * The RCAR sessions this worker knows to be used: their row in `broker_sessions` exists, because this
 * worker inserted it (attested or burnt) or the claiming statement found it. `/attest` refuses such a
 * session before the appraisal and without a database round trip; a session used through another
 * worker is not known here and is refused by the claiming statement, as before. Forgetting a session
 * (the oldest, when full) only costs that fast refusal, never the single use, which the database keeps.
 */
export class UsedSessions {
  private readonly used = new BoundedCache<string, true>(USED_SESSIONS_LIMIT);

  has(id: string): boolean {
    return this.used.has(id);
  }

  remember(id: string): void {
    this.used.set(id, true);
  }
}
