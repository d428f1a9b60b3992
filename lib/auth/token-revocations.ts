import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { storableText } from '../db/storable-text.js';
import { MAX_TOKEN_TTL_SECONDS, TOKEN_CLOCK_TOLERANCE_SECONDS, TokenRefused } from './api-token.js';

const REVOCATIONS = 'api_token_revocations';
/**
 * The first key of the advisory lock of each token id, "irlt" in ASCII; the second is `tokenLockKey`.
 * A revocation takes its token's lock exclusive and a change of the token shared (`refuseRevokedIn`),
 * so a revocation waits for that token's changes past their check to commit, and a change checked
 * after it sees it; a change that does not commit holds back no other token's revocation or change.
 * The two-int4 key space is apart from the one-bigint `hashtext(…)` keys of node ids and registrar
 * hosts (PostgreSQL docs, "Advisory Lock Functions"), whose names callers choose.
 */
const TOKEN_LOCK_CLASS = 0x69726c74;

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
   * Revokes `tokenId` (again: the first revocation's record is kept); `revokedBy` names who did it
   * (stored escaped as `storableText` makes it: a subject holding a NUL made the revocation fail).
   * `alsoInTransaction` (the change's audit record) commits with the revocation, or neither does. It
   * runs before the revocation is stored, so that a token revoking itself passes its own `refuseRevokedIn`.
   * Answered once no change of the token can commit any more (`refuseRevokedIn`). `revokerTokenId`, the
   * token revoking it (if one does), is locked as its change with the revoked one, in key order: two
   * tokens revoking each other at once then wait one for the other instead of deadlocking.
   */
  async revoke(tokenId: string, revokedBy: string, alsoInTransaction: (trx: Knex.Transaction) => Promise<void>, revokerTokenId?: string): Promise<void> {
    const keptSeconds = MAX_TOKEN_TTL_SECONDS + TOKEN_CLOCK_TOLERANCE_SECONDS;
    const revoked = tokenLockKey(tokenId);
    const revoker = revokerTokenId === undefined ? revoked : tokenLockKey(revokerTokenId);
    await this.knex.transaction(async (trx) => {
      if (revoker < revoked) await lockToken(trx, revoker, 'shared');
      await lockToken(trx, revoked, 'exclusive');
      if (revoker > revoked) await lockToken(trx, revoker, 'shared');
      await alsoInTransaction(trx);
      await trx(REVOCATIONS).where('expires_at', '<', trx.fn.now()).delete();
      await trx(REVOCATIONS)
        .insert({ jti: tokenId, revoked_by: storableText(revokedBy), expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keptSeconds]) })
        .onConflict('jti')
        .ignore();
    });
  }

  /**
   * Refuses, inside a change's transaction `trx`, a token revoked since the request was admitted on its
   * headers (its body may take minutes to arrive). Holds the token's lock shared until `trx` ends, so a
   * revocation answered before the change commits is either seen here or waits for the commit.
   * @throws TokenRefused (401) when revoked
   */
  async refuseRevokedIn(trx: Knex.Transaction, tokenId: string): Promise<void> {
    await lockToken(trx, tokenLockKey(tokenId), 'shared');
    if ((await trx(REVOCATIONS).select('jti').where({ jti: tokenId }).first()) !== undefined) throw new TokenRefused('token refused: revoked');
  }
}

/** The second key of `tokenId`'s lock: 32 bits of its SHA-256 (two ids sharing one only wait for each other). */
function tokenLockKey(tokenId: string): number {
  return createHash('sha256').update(tokenId, 'utf8').digest().readInt32BE(0);
}

async function lockToken(trx: Knex.Transaction, key: number, mode: 'shared' | 'exclusive'): Promise<void> {
  await trx.raw(`select pg_advisory_xact_lock${mode === 'shared' ? '_shared' : ''}(?::int, ?::int)`, [TOKEN_LOCK_CLASS, key]);
}
