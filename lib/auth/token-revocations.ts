import type { Knex } from 'knex';
import { MAX_TOKEN_TTL_SECONDS, TOKEN_CLOCK_TOLERANCE_SECONDS, TokenRefused } from './api-token.js';

const REVOCATIONS = 'api_token_revocations';
/**
 * The advisory lock between revocations (exclusive) and the changes they must stop (shared): a
 * revocation waits for the changes already past their check to commit, and a change checked after it
 * sees it. Changes never wait for each other; revocations are rare. Its key is two int4 (this class,
 * "irlt" in ASCII, and 1), a space apart from the one-bigint `hashtext(…)` keys of node ids and
 * registrar hosts (PostgreSQL docs, "Advisory Lock Functions"): callers choose those names, and one
 * hashing like this lock's name would have held back every revocation and token change.
 */
const REVOCATION_LOCK_CLASS = 0x69726c74;

/**
 * The revoked API tokens (`api_token_revocations`), by token id (`jti`). A token's expiry is not known
 * from its id alone, so a revocation is kept for the longest lifetime a token can have (plus the clock
 * skew): by then every token it can name has expired anyway. Expired revocations are deleted when a
 * new one is stored.
 */
export class TokenRevocations {
  constructor(private readonly knex: Knex) {}

  /** Whether `tokenId` was revoked. Throws when the table cannot be read: the caller refuses the token. */
  async isRevoked(tokenId: string): Promise<boolean> {
    const row: unknown = await this.knex(REVOCATIONS).select('jti').where({ jti: tokenId }).first();
    return row !== undefined;
  }

  /**
   * Revokes `tokenId` (again: the first revocation's record is kept); `revokedBy` names who did it.
   * `alsoInTransaction` (the change's audit record) commits with the revocation, or neither does. It
   * runs before the revocation is stored, so that a token revoking itself passes its own `refuseRevokedIn`.
   * Answered once no change of the token can commit any more (`refuseRevokedIn`).
   */
  async revoke(tokenId: string, revokedBy: string, alsoInTransaction: (trx: Knex.Transaction) => Promise<void>): Promise<void> {
    const keptSeconds = MAX_TOKEN_TTL_SECONDS + TOKEN_CLOCK_TOLERANCE_SECONDS;
    await this.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?::int, 1)', [REVOCATION_LOCK_CLASS]);
      await alsoInTransaction(trx);
      await trx(REVOCATIONS).where('expires_at', '<', trx.fn.now()).delete();
      await trx(REVOCATIONS)
        .insert({ jti: tokenId, revoked_by: revokedBy, expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keptSeconds]) })
        .onConflict('jti')
        .ignore();
    });
  }

  /**
   * Refuses, inside a change's transaction `trx`, a token revoked since the request was admitted on its
   * headers (its body may take minutes to arrive). Holds the revocations' lock shared until `trx` ends,
   * so a revocation answered before the change commits is either seen here or waits for the commit.
   * @throws TokenRefused (401) when revoked
   */
  async refuseRevokedIn(trx: Knex.Transaction, tokenId: string): Promise<void> {
    await trx.raw('select pg_advisory_xact_lock_shared(?::int, 1)', [REVOCATION_LOCK_CLASS]);
    if ((await trx(REVOCATIONS).select('jti').where({ jti: tokenId }).first()) !== undefined) throw new TokenRefused('token refused: revoked');
  }
}
