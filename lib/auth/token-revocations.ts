import type { Knex } from 'knex';
import { MAX_TOKEN_TTL_SECONDS, TOKEN_CLOCK_TOLERANCE_SECONDS } from './api-token.js';

const REVOCATIONS = 'api_token_revocations';

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
   * `alsoInTransaction` (the change's audit record) commits with the revocation, or neither does.
   */
  async revoke(tokenId: string, revokedBy: string, alsoInTransaction: (trx: Knex.Transaction) => Promise<void>): Promise<void> {
    const keptSeconds = MAX_TOKEN_TTL_SECONDS + TOKEN_CLOCK_TOLERANCE_SECONDS;
    await this.knex.transaction(async (trx) => {
      await trx(REVOCATIONS).where('expires_at', '<', trx.fn.now()).delete();
      await trx(REVOCATIONS)
        .insert({ jti: tokenId, revoked_by: revokedBy, expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keptSeconds]) })
        .onConflict('jti')
        .ignore();
      await alsoInTransaction(trx);
    });
  }
}
