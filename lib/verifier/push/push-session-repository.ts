import type { Knex } from 'knex';
import type { StoredTokenHash } from './token-hash.js';

const SESSIONS = 'verifier_push_sessions';

export interface PushSession {
  readonly sessionId: string;
  readonly agentId: string;
  readonly challenge: string;
  readonly createdAt: Date;
  readonly challengeExpiresAt: Date;
  readonly token: StoredTokenHash | null;
  readonly tokenExpiresAt: Date | null;
}

/** The push model's sessions (migration 20261203100000): their challenges and token hashes. */
export class PushSessionRepository {
  constructor(private readonly knex: Knex) {}

  async createSession(session: Omit<PushSession, 'token' | 'tokenExpiresAt'>): Promise<void> {
    await this.knex(SESSIONS).insert({
      session_id: session.sessionId,
      agent_id: session.agentId,
      challenge: session.challenge,
      challenge_expires_at: session.challengeExpiresAt,
      created_at: session.createdAt,
    });
  }

  async findSession(sessionId: string): Promise<PushSession | undefined> {
    const row = (await this.knex(SESSIONS).where({ session_id: sessionId }).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : sessionFromRow(row);
  }

  /**
   * Stores the token hash of a session whose challenge was answered — once: a second proof for the
   * same session (a replay) finds the hash set and stores nothing (false).
   */
  async grantToken(sessionId: string, token: StoredTokenHash, expiresAt: Date): Promise<boolean> {
    const updated = await this.knex(SESSIONS)
      .update({ token_salt: token.salt, token_hash: token.hash, token_expires_at: expiresAt })
      .where({ session_id: sessionId })
      .whereNull('token_hash');
    return updated > 0;
  }

  async extendToken(sessionId: string, expiresAt: Date): Promise<void> {
    await this.knex(SESSIONS).update({ token_expires_at: expiresAt }).where({ session_id: sessionId }).where('token_expires_at', '<', expiresAt);
  }

  /** Deletes the sessions whose challenge and token both lapsed before `before` (nothing is returned: knex-pglite gives no count). */
  async deleteLapsedSessions(before: Date): Promise<void> {
    await this.knex(SESSIONS)
      .where('challenge_expires_at', '<', before)
      .where((q) => {
        void q.whereNull('token_expires_at').orWhere('token_expires_at', '<', before);
      })
      .delete();
  }
}

function sessionFromRow(row: Record<string, unknown>): PushSession {
  const salt = row['token_salt'];
  const hash = row['token_hash'];
  return {
    sessionId: String(row['session_id']),
    agentId: String(row['agent_id']),
    challenge: String(row['challenge']),
    createdAt: toDate(row['created_at']) as Date,
    challengeExpiresAt: toDate(row['challenge_expires_at']) as Date,
    token: typeof salt === 'string' && typeof hash === 'string' ? { salt, hash } : null,
    tokenExpiresAt: toDate(row['token_expires_at']) ?? null,
  };
}

/** A `timestamptz` column as read (a `Date`), or undefined for null. */
function toDate(value: unknown): Date | undefined {
  if (value === null || value === undefined) return undefined;
  return value instanceof Date ? value : new Date(String(value));
}
