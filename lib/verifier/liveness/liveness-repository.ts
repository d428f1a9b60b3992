import type { Knex } from 'knex';
import { storedLivenessStatus, type LivenessMode, type LivenessState, type LivenessStatus } from '../../attestation/liveness-decision.js';
import type { TrustLevel } from '../../identity/trust-level.js';
import type { ChangeRecord } from '../admin-change-record.js';
import { lockNodeId } from '../node-id-lock.js';
import { storableNullableText } from '../storable-text.js';

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
  status: string;
  misses: number;
  last_seen_at: Date | string | null;
  last_failure: string | null;
}

/** A status change a stored update made: from the status the locked row held, to the one written. */
export interface LivenessChange {
  readonly from: LivenessStatus;
  readonly to: LivenessStatus;
}

const TABLE = 'verifier_liveness';
const EVENTS_TABLE = 'verifier_liveness_events';

/** Persistence of liveness-checked nodes: enrol (replace), read, list one verifier's, store a state, delete. */
export class LivenessRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Enrols or re-enrols (a fresh `pending` state: a failed node starts over only by re-enrolment);
   * without `metaData`, `{}`. An id the verifier attests with a TPM is not enrolled: resolves to that
   * agent's tenant, checked under the id's lock as a TPM enrolment checks this table, so that no two
   * concurrent enrolments put one id in both; undefined once enrolled, with `audit` (the change's
   * audit record) appended in the same transaction.
   */
  async enrol(record: Omit<LivenessRecord, 'state' | 'metaData'> & { readonly metaData?: string }, audit: ChangeRecord): Promise<string | undefined> {
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
      status: 'pending',
      misses: 0,
      last_seen_at: null,
      last_failure: null,
    };
    return this.knex.transaction(async (trx) => {
      await lockNodeId(trx, record.agentId);
      const attested = (await trx('verifier_agents').select('tenant').where({ agent_id: record.agentId }).first()) as { tenant: string } | undefined;
      if (attested !== undefined) return attested.tenant;
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
   * Stores a decided state (the verdict is stored before anything acts on it) and, in the same
   * transaction, a `verifier_liveness_events` row (with the node's tenant) when the status changed. The row is locked first, so
   * two processes of one verifier id checking the same node record one change, not two. Texts are made
   * storable (a NUL from the node's answer is escaped, never a refused write). Returns the change this
   * update made, undefined when it changed no status (or the node is no longer enrolled): what the
   * caller read before deciding may be stale by then.
   */
  async saveState(agentId: string, state: LivenessState): Promise<LivenessChange | undefined> {
    const lastFailure = storableNullableText(state.lastFailure);
    return this.knex.transaction(async (trx) => {
      const current = (await trx(TABLE).select('status', 'tenant').where({ agent_id: agentId }).forUpdate().first()) as { status: string; tenant: string } | undefined;
      if (current === undefined) return undefined;
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
      await trx(EVENTS_TABLE).insert({ agent_id: agentId, tenant: current.tenant, from_status: current.status, to_status: state.status, reason: lastFailure });
      return { from: storedLivenessStatus(current.status), to: state.status };
    });
  }

  /** Deletes the node, with `audit` appended in the same transaction; false (nothing appended) when it was not enrolled. */
  async delete(agentId: string, audit: ChangeRecord): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      const deleted: unknown[] = await trx(TABLE).where({ agent_id: agentId }).delete().returning('agent_id');
      if (deleted.length === 0) return false;
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
    state: { status: storedLivenessStatus(row.status), misses: Number(row.misses), lastSeen: seen, lastFailure: row.last_failure },
  };
}
