import type { Knex } from 'knex';
import { agentVersionSql } from './agent-row-version.js';
import { judgedDeadSql } from './process-lock-sql.js';
import { recordFromRow, type VerifierAgentRecord } from './verifier-agent-record.js';

const AGENTS = 'verifier_agents';
const PROCESSES = 'verifier_processes';

/** Every column of an updated agent row, and its version as `row_version` (`VerifierAgentRecord.rowVersion`). */
const UPDATED_ROW_AND_VERSION = `*, ${agentVersionSql(AGENTS)} as row_version`;

/** States whose agents need an owner: polled (1, 3–6) or waiting to be deleted (8). */
export const CLAIMABLE_STATES: readonly number[] = [1, 3, 4, 5, 6, 8];

/** `now() + seconds`, the end of a lease taken or renewed now (the database's clock). */
export function leaseUntil(k: Knex | Knex.Transaction, seconds: number): Knex.Raw {
  return k.raw(`now() + make_interval(secs => ?)`, [seconds]);
}

/**
 * Who polls which pull agent (`verifier_agents.owner`, `lease_expires_at`): the statements of the lease
 * sweep and of a start or a clean shutdown (docs/verifier.md, "Several processes on one PostgreSQL").
 * PostgreSQL or PGlite, the same SQL, including `FOR UPDATE SKIP LOCKED`.
 */
export class AgentLeases {
  constructor(private readonly knex: Knex) {}

  /**
   * After a restart on the same data dir: every agent of `verifierId` still recorded as `owner`'s and
   * being polled or deleted (states 1, 3–6, 8; pull agents only: push agents are never polled), with its lease renewed — taken back at once instead of
   * after the lease expires.
   */
  async reclaimOwn(verifierId: string, owner: string, leaseSeconds: number): Promise<VerifierAgentRecord[]> {
    return this.renewOwn(verifierId, owner, leaseSeconds, this.knex(AGENTS));
  }

  /**
   * The agents of `verifierId` that `owner` holds by a running lease, in states 1, 3–6 or 8, other than
   * `known` (polled here, or whose verdict waits here), with their leases renewed: what a claim took
   * whose answer never came back (the statement ran, its connection was cut before the reply), which
   * nobody would poll until those leases lapse. A lease let go of (`releaseAgents`) has ended and is
   * not taken back.
   */
  async takeBackUnknown(verifierId: string, owner: string, leaseSeconds: number, known: readonly string[]): Promise<VerifierAgentRecord[]> {
    const running = this.knex(AGENTS)
      .where('lease_expires_at', '>', this.knex.fn.now())
      .whereRaw('agent_id not in (select jsonb_array_elements_text(?::jsonb))', [JSON.stringify(known)]);
    return this.renewOwn(verifierId, owner, leaseSeconds, running);
  }

  /** Renews the lease of every pull agent of `verifierId` among `rows` that `owner` holds in states 1, 3–6 or 8; resolves to their records. */
  private async renewOwn(verifierId: string, owner: string, leaseSeconds: number, rows: Knex.QueryBuilder): Promise<VerifierAgentRecord[]> {
    const renewed = (await rows
      .update({ lease_expires_at: leaseUntil(this.knex, leaseSeconds) })
      .where({ verifier_id: verifierId, owner, attestation_mode: 'pull' })
      .whereIn('operational_state', CLAIMABLE_STATES)
      .returning(this.knex.raw(UPDATED_ROW_AND_VERSION))) as Record<string, unknown>[];
    return renewed.map(recordFromRow);
  }

  /**
   * Claims up to `limit` agents of `verifierId` in states 1, 3–6 or 8 that nobody holds: no owner, an
   * expired lease (a process that died or shut down — or this one, for an agent whose rounds it could
   * not store long enough and let go), or, when the caller holds the process lock `judgeKey`, an owner
   * dead by its process lock (`judgedDeadSql`: SIGKILLed or crashed, whatever its leases say). Rows
   * another process is claiming at this moment are skipped (`FOR UPDATE SKIP LOCKED`), so concurrent
   * verifiers never claim the same agent. The agents in `except` are not claimed: this process holds a
   * verdict of theirs that is not stored yet, newer than their row.
   */
  async claimFree(
    verifierId: string,
    owner: string,
    leaseSeconds: number,
    limit: number,
    except: readonly string[],
    judgeKey: number | null = null,
  ): Promise<VerifierAgentRecord[]> {
    const k = this.knex;
    const deadOwners = k(`${PROCESSES} as p`).select('p.owner').where('p.verifier_id', verifierId).whereNot('p.owner', owner).whereRaw(judgedDeadSql('p', judgeKey));
    const candidates = k(AGENTS)
      .select('agent_id')
      .where({ verifier_id: verifierId, attestation_mode: 'pull' })
      .whereIn('operational_state', CLAIMABLE_STATES)
      .whereNotIn('agent_id', except)
      .where((q) => {
        void q.whereNull('owner').orWhere('lease_expires_at', '<', k.fn.now());
        if (judgeKey !== null) void q.orWhereIn('owner', deadOwners);
      })
      .orderBy('agent_id')
      .limit(limit)
      .forUpdate()
      .skipLocked();
    const rows = (await k(AGENTS)
      .update({ owner, lease_expires_at: leaseUntil(this.knex, leaseSeconds) })
      .whereIn('agent_id', candidates)
      .returning(k.raw(UPDATED_ROW_AND_VERSION))) as Record<string, unknown>[];
    return rows.map(recordFromRow);
  }

  /**
   * Which of `agentIds` `owner` holds no longer (another process claimed it, or its row is gone): one
   * statement over the primary key, run at each lease sweep so a process stops polling what was taken
   * from it without waiting for its next round's write to be refused.
   */
  async notOwnedBy(owner: string, agentIds: readonly string[]): Promise<string[]> {
    if (agentIds.length === 0) {
      return [];
    }
    const result = (await this.knex.raw(
      `select ids.id from jsonb_array_elements_text(?::jsonb) as ids(id)
       where not exists (select 1 from ${AGENTS} a where a.agent_id = ids.id and a.owner = ?)`,
      [JSON.stringify(agentIds), owner],
    )) as { rows: { id: string }[] };
    return result.rows.map((row) => row.id);
  }

  /**
   * Renews the leases `owner` holds on `agentIds` — only the agents whose last round the caller
   * stored: an agent whose verdict waits for the database keeps no lease it cannot honour, so another
   * process may take it over from its stored state. A row a round writer's batch holds is skipped, not
   * waited for: that batch renews the lease itself when it commits, and two multi-row updates taking
   * the same rows in different orders deadlock (seen at 500 agents: every round of the batch then had
   * to be written again). Resolves to how many were renewed.
   */
  async renewLeases(owner: string, leaseSeconds: number, agentIds: readonly string[]): Promise<number> {
    if (agentIds.length === 0) {
      return 0;
    }
    const result = (await this.knex.raw(
      `update ${AGENTS} set lease_expires_at = now() + make_interval(secs => ?)
       where agent_id in (
         select agent_id from ${AGENTS}
         where owner = ? and agent_id in (select jsonb_array_elements_text(?::jsonb))
         for update skip locked)`,
      [leaseSeconds, owner, JSON.stringify(agentIds)],
    )) as { rowCount?: number; affectedRows?: number };
    return result.rowCount ?? result.affectedRows ?? 0;
  }

  /** Lets `owner`'s leases on `agentIds` expire now, so another process may claim them at its next sweep (fair share). */
  async releaseAgents(owner: string, agentIds: readonly string[]): Promise<void> {
    if (agentIds.length === 0) {
      return;
    }
    await this.knex.raw(
      `update ${AGENTS} set lease_expires_at = now() where owner = ? and agent_id in (select jsonb_array_elements_text(?::jsonb))`,
      [owner, JSON.stringify(agentIds)],
    );
  }

  /** Lets every lease of `owner` expire now, so other processes may take the agents at once (clean shutdown). */
  async releaseLeases(owner: string): Promise<void> {
    await this.knex(AGENTS).update({ lease_expires_at: this.knex.fn.now() }).where({ owner });
  }
}
