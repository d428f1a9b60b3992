import type { Knex } from 'knex';

/**
 * What `RevocationStore.recordReinstatement` did: ended the revocation it read; found none in force (never
 * revoked, or reinstated already); or found it replaced by a revocation recorded meanwhile, left in force.
 */
export type Reinstatement = 'reinstated' | 'not revoked' | 'revoked again';

/**
 * Writes of `broker_revocations` (migrations `create-broker-tables`, `broker-node-digest-and-reinstatement`,
 * `broker-applied-revocations`), one statement each except `recordReinstatement`. Reads happen with the requests'
 * own statements (`broker-statements.ts`). Errors from the database propagate: the caller fails closed.
 */
export class RevocationStore {
  constructor(private readonly knex: Knex) {}

  /** Records (or renews) a revocation in force. */
  async revoke(agentId: string, at: number, reason: string): Promise<void> {
    await this.knex('broker_revocations')
      .insert({ agent_id: agentId, revoked_at: at, reason, reinstated_at: null })
      .onConflict('agent_id')
      .merge();
  }

  /**
   * `revoke` for a verifier's message, in one statement, only the first time the message (its SHA-256)
   * is seen for the node: a message applied before, replayed or retried, records nothing (the node may
   * have been reinstated since). True when the revocation was recorded.
   */
  async revokeOnce(agentId: string, at: number, reason: string, messageSha256: string): Promise<boolean> {
    const result = (await this.knex.raw(
      `with first_seen as (
         insert into broker_applied_revocations (agent_id, message_sha256, applied_at) values (?, ?, ?)
         on conflict do nothing returning agent_id)
       insert into broker_revocations (agent_id, revoked_at, reason, reinstated_at)
         select agent_id, ?, ?, null from first_seen
       on conflict (agent_id) do update set revoked_at = excluded.revoked_at, reason = excluded.reason, reinstated_at = null
       returning agent_id`,
      [agentId, messageSha256, at, at, reason],
    )) as { rows: unknown[] };
    return result.rows.length > 0;
  }

  /**
   * Ends the revocation in force and records when (milliseconds, `clock()`): the row stays, so
   * credentials issued before the reinstatement stay refused. A reinstatement in the revocation's own
   * second is recorded at the start of the next one, and `answerAt` is that instant: the caller answers
   * once it has passed (`waitUntil`, at most a second later, after its transaction committed, so the
   * row and the audit head are not held meanwhile). A token's `iat` has whole seconds, and one of the
   * revocation's second is refused after a reinstatement (`revocationRefusal`) — without the wait, a
   * node revoked and reinstated at once got tokens refused until the second ended. It ends only the
   * revocation it read: the row's version (PostgreSQL's `xmin`, which every write of the row changes,
   * by any broker version) is read first, `clock()` after it, and the update applies only to that
   * version. A revocation recorded after the read — a verifier's failure arriving meanwhile, in any
   * worker — is never cleared by this reinstatement (`revoked again`); a plain update would have
   * cleared it with an earlier time. `expectedVersion` (from `versionInForce`, read earlier by the
   * caller) ends only that revocation.
   */
  async recordReinstatement(agentId: string, clock: () => number, expectedVersion?: string): Promise<{ readonly outcome: Reinstatement; readonly answerAt?: number }> {
    const version = expectedVersion ?? (await this.versionInForce(agentId));
    if (version === null) {
      return { outcome: 'not revoked' };
    }
    const at = clock();
    const updated = (await this.knex.raw(
      // At most a second ahead, should another host's clock have recorded the revocation later.
      `update broker_revocations set reinstated_at = greatest(?::bigint, least((revoked_at + 1) * 1000, ?::bigint + 1000))
       where agent_id = ? and reinstated_at is null and xmin = ?::text::xid returning reinstated_at`,
      [at, at, agentId, version],
    )) as { rows: { reinstated_at: string | number }[] };
    const recorded = updated.rows[0]?.reinstated_at;
    if (recorded !== undefined) {
      return { outcome: 'reinstated', answerAt: Number(recorded) };
    }
    const inForce = await this.knex('broker_revocations').select('agent_id').where({ agent_id: agentId }).whereNull('reinstated_at').first();
    return { outcome: inForce === undefined ? 'not revoked' : 'revoked again' };
  }

  /**
   * The version of the revocation in force for the node (its row's `xmin`, as text; opaque to callers),
   * or null when none is: a caller that reads it before a long step (a deploy) reinstates only that
   * revocation afterwards, never one recorded during the step.
   */
  async versionInForce(agentId: string): Promise<string | null> {
    const read = (await this.knex.raw('select xmin::text as version from broker_revocations where agent_id = ? and reinstated_at is null', [agentId])) as {
      rows: { version: string }[];
    };
    return read.rows[0]?.version ?? null;
  }
}

/** Resolves once `clock()` has passed `at` (a reinstatement recorded ahead of the clock), at once without `at`. */
export async function waitUntil(at: number | undefined, clock: () => number): Promise<void> {
  const ahead = at === undefined ? 0 : at - clock();
  if (ahead > 0) {
    await new Promise((resolve) => setTimeout(resolve, ahead + 1));
  }
}
