import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { AuditLog } from '../../audit/audit-log.js';
import { storedLivenessStatus, type LivenessMode, type LivenessState, type LivenessStatus } from '../../attestation/liveness-decision.js';
import type { TrustLevel } from '../../identity/trust-level.js';
import type { ChangeRecord } from '../admin-change-record.js';
import { lockNodeId } from '../node-id-lock.js';
import type { SeesTenant } from '../verifier-access.js';
import { storableNullableText } from '../../db/storable-text.js';

/** A node without a TPM as the verifier keeps it (migration `*-verifier-liveness`). */
export interface LivenessRecord {
  readonly agentId: string;
  /** Whose node it is (as `verifier_agents.tenant`): the enrolling token's tenant, or `default`. */
  readonly tenant: string;
  readonly verifierId: string;
  readonly mode: LivenessMode;
  readonly trustLevel: TrustLevel;
  readonly ip: string;
  readonly port: number;
  readonly mtlsCert: string;
  /** hex; `id-secret` only. */
  readonly proofKey: string | null;
  /** The enrolment's `metadata` JSON object text (`{}` when none was given), as a TPM enrolment's. */
  readonly metaData: string;
  /** Which enrolment this is: a fresh uuid at every (re-)enrolment (migration `*-verifier-liveness-enrolment`). */
  readonly enrolment: string;
  readonly state: LivenessState;
}

interface LivenessRow {
  agent_id: string;
  tenant: string;
  verifier_id: string;
  identity_mode: string;
  trust_level: string;
  ip: string;
  port: number;
  mtls_cert: string;
  proof_key: string | null;
  meta_data: string;
  enrolment: string;
  status: string;
  misses: number;
  last_seen_at: Date | string | null;
  last_failure: string | null;
}

/**
 * Why an enrolment was not made: the id is attested with a TPM here (`tenant` owns it, and the caller
 * sees that tenant), or it is `hidden`: attested or enrolled for another tenant than the caller sees.
 */
export type LivenessEnrolRefusal = { readonly reason: 'attested'; readonly tenant: string } | { readonly reason: 'hidden' };

/** A status change a stored update made: from the status the locked row held, to the one written, and why. */
export interface LivenessChange {
  readonly from: LivenessStatus;
  readonly to: LivenessStatus;
  readonly reason: string | null;
}

const TABLE = 'verifier_liveness';
const EVENTS_TABLE = 'verifier_liveness_events';

/** A check's verdict: the state after it, from the state the row holds and the database's time (seconds since the epoch). */
export type LivenessDecide = (stored: LivenessState, databaseNow: number) => LivenessState;

/** Persistence of liveness-checked nodes: enrol (replace), read, list one verifier's, store a state, delete. */
export class LivenessRepository {
  /**
   * @param statusAudit when given (the verifier gives its audit log and name), each status change is
   * also a signed `liveness` record in the node's audit stream, in the transaction that stores it.
   */
  constructor(
    private readonly knex: Knex,
    private readonly statusAudit?: { readonly log: AuditLog; readonly actor: string },
  ) {}

  /**
   * Enrols or re-enrols (a fresh `pending` state and `enrolment` uuid: a failed node starts over only
   * by re-enrolment); without `metaData`, `{}`. Under the id's lock, as a TPM enrolment checks this
   * table under it, so that no two concurrent enrolments put one id in both, and so that the tenant
   * check is made on what is written over, not on what the admin gate read before the body arrived: an
   * id attested with a TPM, or enrolled for a tenant the caller does not `sees`, is refused (nothing
   * written). Undefined once enrolled, with `audit` (the change's audit record) appended in the same transaction.
   */
  async enrol(
    record: Omit<LivenessRecord, 'state' | 'metaData' | 'enrolment'> & { readonly metaData?: string },
    audit: ChangeRecord,
    sees: SeesTenant,
  ): Promise<LivenessEnrolRefusal | undefined> {
    const row = {
      agent_id: record.agentId,
      tenant: record.tenant,
      verifier_id: record.verifierId,
      identity_mode: record.mode,
      trust_level: record.trustLevel,
      ip: record.ip,
      port: record.port,
      mtls_cert: record.mtlsCert,
      proof_key: record.proofKey,
      meta_data: record.metaData ?? '{}',
      enrolment: randomUUID(),
      status: 'pending',
      misses: 0,
      last_seen_at: null,
      last_failure: null,
    };
    return this.knex.transaction(async (trx): Promise<LivenessEnrolRefusal | undefined> => {
      await lockNodeId(trx, record.agentId);
      const attested = (await trx('verifier_agents').select('tenant').where({ agent_id: record.agentId }).first()) as { tenant: string } | undefined;
      if (attested !== undefined) return sees(attested.tenant) ? { reason: 'attested', tenant: attested.tenant } : { reason: 'hidden' };
      const enrolled = (await trx(TABLE).select('tenant').where({ agent_id: record.agentId }).forUpdate().first()) as { tenant: string } | undefined;
      if (enrolled !== undefined && !sees(enrolled.tenant)) return { reason: 'hidden' };
      await trx(TABLE)
        .insert(row)
        .onConflict('agent_id')
        .merge({ ...row, updated_at: trx.fn.now() });
      await audit(trx);
      return undefined;
    });
  }

  async find(agentId: string): Promise<LivenessRecord | undefined> {
    const row: LivenessRow | undefined = await this.knex(TABLE).where({ agent_id: agentId }).first();
    return row === undefined ? undefined : fromRow(row);
  }

  async listFor(verifierId: string): Promise<LivenessRecord[]> {
    const rows: LivenessRow[] = await this.knex(TABLE).where({ verifier_id: verifierId }).orderBy('agent_id');
    return rows.map(fromRow);
  }

  /**
   * Stores the state `decide` makes of the state the locked row holds, given the database's time in
   * seconds since the epoch (every process of a verifier id dates answers and measures silences on that
   * one clock, not on its own); the verdict is stored before anything acts on it, and in the same transaction a `verifier_liveness_events` row (with the node's
   * tenant) when the status changed. Deciding from the locked row, not from what the caller read
   * before its check, keeps a newer state another process stored: two processes of one verifier id
   * checking the same node record one change, not two, and never undo each other's verdicts. Nothing is
   * written when the row no longer holds `enrolment` (deleted or re-enrolled since the check: its
   * observation was of another address, certificate or key) or is `failed` (final until re-enrolled).
   * Texts are made storable (a NUL from the node's answer is escaped, never a refused write). Returns
   * the change this update made, undefined when it changed no status or wrote nothing.
   */
  async saveState(agentId: string, enrolment: string, decide: LivenessDecide): Promise<LivenessChange | undefined> {
    return this.knex.transaction(async (trx) => {
      const row = (await trx(TABLE).where({ agent_id: agentId }).forUpdate().first()) as LivenessRow | undefined;
      if (row === undefined || row.enrolment !== enrolment) return undefined;
      const current = fromRow(row).state;
      if (current.status === 'failed') return undefined;
      const state = decide(current, await databaseSeconds(trx));
      const lastFailure = storableNullableText(state.lastFailure);
      await trx(TABLE)
        .where({ agent_id: agentId })
        .update({
          status: state.status,
          misses: state.misses,
          last_seen_at: state.lastSeen === null ? null : new Date(state.lastSeen * 1000),
          last_failure: lastFailure,
          updated_at: trx.fn.now(),
        });
      if (current.status === state.status) return undefined;
      await trx(EVENTS_TABLE).insert({ agent_id: agentId, tenant: row.tenant, from_status: current.status, to_status: state.status, reason: lastFailure });
      await this.statusAudit?.log.appendIn(trx, {
        stream: agentId,
        at: new Date().toISOString(),
        actor: `verifier:${this.statusAudit.actor}`,
        action: 'liveness',
        agentId,
        details: { from: current.status, to: state.status, reason: lastFailure },
      });
      return { from: current.status, to: state.status, reason: state.lastFailure };
    });
  }

  /**
   * Deletes the node, with `audit` appended in the same transaction; false (nothing appended) when it
   * is not enrolled or is enrolled for a tenant the caller does not `sees` (checked on the locked row).
   */
  async delete(agentId: string, audit: ChangeRecord, sees: SeesTenant): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const enrolled = (await trx(TABLE).select('tenant').where({ agent_id: agentId }).forUpdate().first()) as { tenant: string } | undefined;
      if (enrolled === undefined || !sees(enrolled.tenant)) return false;
      await trx(TABLE).where({ agent_id: agentId }).delete();
      await audit(trx);
      return true;
    });
  }
}

function fromRow(row: LivenessRow): LivenessRecord {
  const seen = row.last_seen_at === null ? null : Math.floor(new Date(row.last_seen_at).getTime() / 1000);
  return {
    agentId: row.agent_id,
    tenant: row.tenant,
    verifierId: row.verifier_id,
    // Written only from checked enrolments (LivenessEnrolBody): a known mode and level.
    mode: row.identity_mode === 'id-secret' ? 'id-secret' : 'id-only',
    trustLevel: row.trust_level === 'id-secret' ? 'id-secret' : 'id-only',
    ip: row.ip,
    port: Number(row.port),
    mtlsCert: row.mtls_cert,
    proofKey: row.proof_key,
    metaData: row.meta_data,
    enrolment: row.enrolment,
    state: { status: storedLivenessStatus(row.status), misses: Number(row.misses), lastSeen: seen, lastFailure: row.last_failure },
  };
}

/** The database's clock in seconds since the epoch (its transaction's start). */
async function databaseSeconds(trx: Knex.Transaction): Promise<number> {
  const result = (await trx.raw('select extract(epoch from now())::float8 as now')) as { rows: { now: number | string }[] };
  return Number(result.rows[0]?.now);
}
