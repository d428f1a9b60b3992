import type { Knex } from 'knex';
import type { IdentityMode } from '../identity/trust-level.js';
import type { StoredIdentity } from './identity-continuity.js';
import { ekKeyHashToKeep } from './ek-key-hash.js';
import { AGENT_COLUMNS, AGENTS_TABLE as TABLE, fromRow, toRow, type AgentRow } from './registrar-agent-row.js';
import { RegistrarFull, RegistrationConflict } from './registrar-errors.js';

/** Where the verifier and tenant reach an agent. */
export interface ContactDetails {
  readonly ip: string | null;
  readonly port: number | null;
  /** PEM of the agent's HTTPS server certificate, or "disabled". */
  readonly mtlsCert: string | null;
}

/**
 * One registered agent as stored in `registrar_agents` (migrations `*-create-registrar-agents`,
 * `*-identity-modes`).
 */
export interface StoredAgent extends StoredIdentity {
  readonly agentId: string;
  /** base64 TPM2B_PUBLIC of the EK; null for an agent without a TPM (`id-secret`, `id-only`). */
  readonly ekTpm: string | null;
  /** base64 DER of the EK certificate, or null when the agent sent none. */
  readonly ekCert: string | null;
  /** base64 TPM2B_PUBLIC of the AK; null without a TPM. */
  readonly aikTpm: string | null;
  /**
   * TPM modes: base64 of the activation credential, the HMAC key of `auth_tag`; once a tag was
   * accepted, `spentActivationKey` of it (`activation-proof.ts`). `id-secret`: the nonce the host must
   * answer with its proof (empty once answered, so it cannot be reused).
   */
  readonly activationKey: string;
  readonly ip: string | null;
  readonly port: number | null;
  readonly mtlsCert: string | null;
  /** Contact details sent by a re-registration of the active agent, in force after its next activation. */
  readonly pendingContact: ContactDetails | null;
  readonly regcount: number;
  /** Why the last registration under this id was refused as a downgrade; null when none was. */
  readonly flaggedReason: string | null;
}

/** Bounds on what unauthenticated registrations may leave in the table (issue 11 item 6). */
export interface RegistrationLimits {
  /** Agent ids one EK may be registered under at once (active or not yet expired). */
  readonly maxAgentsPerEk: number;
  /** Seconds after its last registration a never-activated record is removed. */
  readonly inactiveTtlSeconds: number;
  /** Records of each identity mode other than `tpm` (active or not yet expired) the table holds at once. */
  readonly maxAgentsPerNonTpmMode: number;
}

export const DEFAULT_REGISTRATION_LIMITS: RegistrationLimits = Object.freeze({ maxAgentsPerEk: 8, inactiveTtlSeconds: 3600, maxAgentsPerNonTpmMode: 10_000 });

/**
 * What a registration is serialised and counted by: the hash of its EK public key (`ekKeyHash`; the
 * stored `ek_key_hash`, one per record) and its host id hash, each null when absent.
 */
export interface RegistrationKey {
  readonly ekKeyHash: string | null;
  readonly hostIdHash: string | null;
}

/** A row as the repository reads it back: with the `ek_key_hash` updates must keep. */
type StoredRow = AgentRow & { ek_key_hash: string | null };

/** A locked live record and its stored `ek_key_hash`. */
interface LockedRecord {
  readonly agent: StoredAgent;
  readonly ekKeyHash: string | null;
}

/** SQL: the row is a never-activated record past its time to live (one parameter: the TTL in seconds). */
const EXPIRED = '(NOT active AND updated_at < now() - make_interval(secs => ?))';

/** The advisory lock that serialises the count of one identity mode's records with their insertion (suffix: the mode). */
const MODE_COUNT_LOCK = 'registrar-mode-count:';

/** PostgreSQL SQLSTATE unique_violation (Appendix A of the PostgreSQL manual). */
const UNIQUE_VIOLATION = '23505';

/** What an activation attempt did to the record: `updated` carries the record as stored. */
export type ActivationOutcome =
  | { readonly outcome: 'updated'; readonly agent: StoredAgent }
  | { readonly outcome: 'not-found' };

/**
 * Persistence of registrar agents. Every change runs in one transaction that first locks the agent's
 * row (`SELECT … FOR UPDATE`), so concurrent requests for one agent are serialised and a decision is
 * always taken on the row as committed. Registrations of one agent id are serialised by an advisory
 * lock on the id taken first, as Keylime's registrar holds a per-agent lock: of two first registrations
 * of a new id, the later is judged against the record the earlier stored, as any later registration is
 * (that record is not activated yet, so another identity replaces it; docs/registrar.md), never by which
 * insert won. A callback that throws rolls the transaction back: nothing stored changes.
 *
 * Unauthenticated registrations are bounded: a never-activated record expires `inactiveTtlSeconds`
 * after its last registration (expired rows are removed by the next registration or listing, and
 * cannot be activated), and a new agent id is refused once its EK is registered under
 * `maxAgentsPerEk` activated ids (counted by EK public key, not by its TPM2B_PUBLIC bytes; at the
 * limit the oldest never-activated record of the EK gives way, so the count also bounds the rows of
 * one EK). Records of the
 * modes other than `tpm` escape both bounds — an `id-only` one is active at once and has no EK, a
 * software EK costs nothing — so each of those modes holds at most `maxAgentsPerNonTpmMode` records,
 * counted apart (a flood of one mode does not lock out the others); a stored id re-registers in its
 * mode regardless, and a `tpm` registration is never refused by it. Registrations of one EK, and of
 * one host id, are serialised with transaction-scoped advisory locks (activations of a host id take
 * its lock too), so two concurrent ones cannot both pass the count or both judge continuity against
 * a host they do not yet see; records entering
 * a capped mode are serialised by one more lock per mode for its count.
 */
export class RegistrarAgentRepository {
  constructor(
    private readonly knex: Knex,
    private readonly limits: RegistrationLimits = DEFAULT_REGISTRATION_LIMITS,
  ) {}

  /**
   * Locks `agentId`, hands the current record (or undefined) and the records of other agent ids with
   * the same host id to `decide`, and stores what it returns. `decide` may throw to refuse the
   * registration; the row is then left untouched. Registrations of one EK, and of one host id, are
   * serialised.
   */
  async register(
    agentId: string,
    key: RegistrationKey,
    decide: (current: StoredAgent | undefined, sameHost: readonly StoredAgent[]) => Omit<StoredAgent, 'agentId'>,
  ): Promise<StoredAgent> {
    await this.deleteExpired();
    try {
      return await this.knex.transaction(async (trx) => {
        for (const name of advisoryLocks(agentId, key)) {
          await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [name]);
        }
        const locked = await this.lockLive(trx, agentId);
        const current = locked?.agent;
        if (key.ekKeyHash !== null && entersEk(locked, key.ekKeyHash)) {
          await this.checkEkCount(trx, agentId, key.ekKeyHash);
        }
        const sameHost = key.hostIdHash === null ? [] : await this.findByHostIdHash(trx, key.hostIdHash);
        const next: StoredAgent = { ...decide(current, sameHost), agentId };
        if (next.identityMode !== 'tpm' && next.identityMode !== current?.identityMode) {
          await this.checkModeCount(trx, agentId, next.identityMode);
        }
        if (current === undefined) {
          await trx(TABLE).insert({ ...toRow(next), ek_key_hash: key.ekKeyHash });
        } else {
          await trx(TABLE)
            .where({ agent_id: agentId })
            .update({ ...toRow(next), ek_key_hash: key.ekKeyHash, updated_at: trx.fn.now() });
        }
        return next;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new RegistrationConflict(`agent ${agentId} is being registered concurrently; retry`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Locks `agentId` and lets `decide` judge the stored record, with the records of other agent ids
   * that carry its host id: it returns the record to store, or the record it was handed to write
   * nothing; `decide` throws to change nothing (a wrong proof). An expired never-activated record is removed and reported as not found.
   * Activations of one host id are serialised with its registrations (the same advisory lock).
   */
  async activate(
    agentId: string,
    decide: (current: StoredAgent, sameHost: readonly StoredAgent[]) => Omit<StoredAgent, 'agentId'>,
  ): Promise<ActivationOutcome> {
    // The host lock is taken before the row lock, in the order a registration takes them (it holds the
    // host lock while it waits for the row), so the host id is read first without a lock.
    const unlocked: Pick<AgentRow, 'host_id_hash'> | undefined = await this.knex(TABLE).select('host_id_hash').where({ agent_id: agentId }).first();
    const hostIdHash = unlocked?.host_id_hash ?? null;
    return this.knex.transaction(async (trx) => {
      if (hostIdHash !== null) {
        await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [hostLock(hostIdHash)]);
      }
      const locked = await this.lockLive(trx, agentId);
      if (locked === undefined) {
        return { outcome: 'not-found' };
      }
      if (locked.agent.hostIdHash !== hostIdHash) {
        throw new RegistrationConflict(`agent ${agentId} was registered again while it was being activated; retry`);
      }
      const sameHost = hostIdHash === null ? [] : await this.findByHostIdHash(trx, hostIdHash);
      const next = decide(locked.agent, sameHost);
      if (next === locked.agent) {
        return { outcome: 'updated', agent: locked.agent };
      }
      const agent: StoredAgent = { ...next, agentId };
      const ekKeyHash = ekKeyHashToKeep(agentId, locked.agent.ekTpm, locked.ekKeyHash);
      await trx(TABLE).where({ agent_id: agentId }).update({ ...toRow(agent), ek_key_hash: ekKeyHash, updated_at: trx.fn.now() });
      return { outcome: 'updated', agent };
    });
  }

  async find(agentId: string): Promise<StoredAgent | undefined> {
    const row: AgentRow | undefined = await this.knex(TABLE).select([...AGENT_COLUMNS]).where({ agent_id: agentId }).first();
    return row === undefined ? undefined : fromRow(row);
  }

  /** Records that carry this host id (any agent id), expired ones left out. */
  async findByHostIdHash(db: Knex | Knex.Transaction, hostIdHash: string): Promise<StoredAgent[]> {
    const rows: AgentRow[] = await db(TABLE)
      .select([...AGENT_COLUMNS])
      .where({ host_id_hash: hostIdHash })
      .andWhereRaw(`NOT ${EXPIRED}`, [this.limits.inactiveTtlSeconds])
      .orderBy('agent_id');
    return rows.map(fromRow);
  }

  /**
   * Records why a registration under `agentId` was refused (no-op when there is no record).
   * @throws DamagedAgentRecord when the record cannot be changed (see `ekKeyHashToKeep`)
   */
  async flag(agentId: string, reason: string): Promise<void> {
    await this.updateStored(agentId, { flagged_reason: reason, flagged_at: this.knex.fn.now() });
  }

  /**
   * An admin allows the next registration of `agentId` to use `mode`; false when there is no record.
   * @throws DamagedAgentRecord when the record cannot be changed (see `ekKeyHashToKeep`)
   */
  async allowModeChange(agentId: string, mode: IdentityMode): Promise<boolean> {
    return this.updateStored(agentId, { mode_change_to: mode, updated_at: this.knex.fn.now() });
  }

  /** Ids of every stored agent, active or not (Keylime's `all_ids`), in a stable order. */
  async listIds(): Promise<string[]> {
    await this.deleteExpired();
    const rows = await this.knex<AgentRow>(TABLE).select('agent_id').orderBy('agent_id');
    return rows.map((row) => row.agent_id);
  }

  /** Deletes the record; false when there was none. */
  async delete(agentId: string): Promise<boolean> {
    // `returning` rather than the affected-row count, which knex-pglite does not report.
    const deleted: unknown[] = await this.knex(TABLE).where({ agent_id: agentId }).delete().returning('agent_id');
    return deleted.length > 0;
  }

  /**
   * Removes expired never-activated records: housekeeping, one statement of its own outside any
   * transaction. It skips a row another transaction holds instead of waiting for it, so it never waits
   * for a lock and cannot take part in a deadlock. (Run inside a registration before its advisory
   * locks, it could: the registration held the expired rows it had deleted while it waited for the EK
   * lock of another, which then waited to lock one of those rows as its own record.) The guarantees do
   * not rest on it: `lockLive` and the counts treat an expired row left in place as absent.
   */
  private async deleteExpired(): Promise<void> {
    const expired = this.knex(TABLE).select('agent_id').whereRaw(EXPIRED, [this.limits.inactiveTtlSeconds]).forUpdate().skipLocked();
    await this.knex(TABLE).whereIn('agent_id', expired).delete();
  }

  /**
   * Changes columns of the stored record under its row lock, writing back its `ek_key_hash` (which a
   * record stored before the hash was required may lack); false when there is no record.
   */
  private async updateStored(agentId: string, changes: Record<string, unknown>): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const row: Pick<StoredRow, 'ek_tpm' | 'ek_key_hash'> | undefined = await trx(TABLE)
        .select('ek_tpm', 'ek_key_hash')
        .where({ agent_id: agentId })
        .forUpdate()
        .first();
      if (row === undefined) return false;
      await trx(TABLE)
        .where({ agent_id: agentId })
        .update({ ...changes, ek_key_hash: ekKeyHashToKeep(agentId, row.ek_tpm, row.ek_key_hash) });
      return true;
    });
  }

  /**
   * Makes room for a new agent id of this EK: under `maxAgentsPerEk` records it passes; at the limit
   * the oldest never-activated record of the EK is deleted to make room (hunt H6: the EK and its
   * certificate are public, so records that proved nothing must not lock the TPM out of a new id);
   * only when every record of the EK is activated is the registration refused. A never-activated
   * record another transaction holds (being activated or registered) is skipped, not waited for.
   */
  private async checkEkCount(trx: Knex.Transaction, agentId: string, ekKeyHash: string): Promise<void> {
    const rows: { count: string | number }[] = await trx(TABLE)
      .where({ ek_key_hash: ekKeyHash })
      .andWhereRaw(`NOT ${EXPIRED}`, [this.limits.inactiveTtlSeconds])
      .count({ count: '*' });
    const count = Number(rows[0]?.count ?? 0);
    const excess = count - this.limits.maxAgentsPerEk + 1;
    if (excess <= 0) return;
    const oldest: Pick<AgentRow, 'agent_id'>[] = await trx(TABLE)
      .select('agent_id')
      .where({ ek_key_hash: ekKeyHash, active: false })
      .andWhereRaw(`NOT ${EXPIRED}`, [this.limits.inactiveTtlSeconds])
      .orderBy([{ column: 'updated_at' }, { column: 'agent_id' }])
      .limit(excess)
      .forUpdate()
      .skipLocked();
    if (oldest.length < excess) {
      throw new RegistrationConflict(
        `the EK of agent '${agentId}' is already registered under ${count} agent ids (at most ` +
          `${this.limits.maxAgentsPerEk}), activated or being activated; delete one of them first`,
      );
    }
    await trx(TABLE).whereIn('agent_id', oldest.map((row) => row.agent_id)).delete();
  }

  /**
   * Refuses a record entering `mode` (a new agent id, or an admin-allowed mode change) once
   * `maxAgentsPerNonTpmMode` records of that mode are stored. The lock is taken last and only the
   * count and the write follow it, so no transaction that holds it waits for one that waits for it.
   * The count is served by `registrar_agents_mode_idx`.
   */
  private async checkModeCount(trx: Knex.Transaction, agentId: string, mode: Exclude<IdentityMode, 'tpm'>): Promise<void> {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [MODE_COUNT_LOCK + mode]);
    const rows: { count: string | number }[] = await trx(TABLE)
      .where({ identity_mode: mode })
      .andWhereRaw(`NOT ${EXPIRED}`, [this.limits.inactiveTtlSeconds])
      .count({ count: '*' });
    const count = Number(rows[0]?.count ?? 0);
    if (count >= this.limits.maxAgentsPerNonTpmMode) {
      throw new RegistrarFull(agentId, mode, count);
    }
  }

  /**
   * Locks the record of `agentId` (`SELECT … FOR UPDATE`). An expired one is deleted under that lock
   * and reported as absent: it can be neither continued nor activated.
   */
  private async lockLive(trx: Knex.Transaction, agentId: string): Promise<LockedRecord | undefined> {
    const row: (StoredRow & { expired: boolean }) | undefined = await trx(TABLE)
      .select([...AGENT_COLUMNS, 'ek_key_hash', trx.raw(`${EXPIRED} AS expired`, [this.limits.inactiveTtlSeconds])])
      .where({ agent_id: agentId })
      .forUpdate()
      .first();
    if (row === undefined) return undefined;
    if (row.expired) {
      await trx(TABLE).where({ agent_id: agentId }).delete();
      return undefined;
    }
    return { agent: fromRow(row), ekKeyHash: row.ek_key_hash };
  }
}

/**
 * The advisory locks a registration takes: its host id (continuity is judged against every record of
 * that host, so a TPM registration that names one must wait for a host-only one, and the reverse), then
 * its EK (the per-EK count). Always in that order, so two registrations never wait on each other.
 */
function advisoryLocks(agentId: string, key: RegistrationKey): string[] {
  const host = key.hostIdHash === null ? [] : [hostLock(key.hostIdHash)];
  const ek = key.ekKeyHash === null ? [] : [`registrar-ek:${key.ekKeyHash}`];
  // The agent id's own lock first (only registrations take it): two registrations of one id with other
  // EKs took disjoint locks, both found no row, and the loser of the insert got "registered concurrently"
  // where, a moment later, it would have been judged against the winner's record. Keylime's registrar
  // holds a per-agent lock for the same reason.
  return [`registrar-agent:${agentId}`, ...host, ...ek];
}

/**
 * True when a registration would add a record to this EK's count: a new agent id, or a never-activated
 * record that another EK's registration replaces (an activated one cannot change its EK). A record
 * stored before `ek_key_hash` existed, with an EK but no hash, is left to its own rules.
 */
function entersEk(locked: LockedRecord | undefined, ekKeyHash: string): boolean {
  if (locked === undefined) return true;
  if (locked.agent.active || (locked.ekKeyHash === null && locked.agent.ekTpm !== null)) return false;
  return locked.ekKeyHash !== ekKeyHash;
}

/** The advisory lock of one host id, taken by its registrations and activations. */
function hostLock(hostIdHash: string): string {
  return `registrar-host:${hostIdHash}`;
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION;
}
