import type { Knex } from 'knex';
import type { AgentAttestationState } from '../attestation/agent-state.js';
import { OPERATOR_STOPPED_STATES, type OperationalState, type OperatorStop } from '../attestation/operational-state.js';
import { decideReactivation } from '../attestation/pull-decision.js';
import {
  enrolmentColumns,
  reactivationColumns,
  historyFromRow,
  recordFromRow,
  stateColumns,
  type HistoryRecord,
  type VerifierAgentEnrolment,
  type VerifierAgentRecord,
} from './verifier-agent-record.js';
import { agentVersionSql } from './agent-row-version.js';
import { AgentLeases, leaseUntil } from './agent-leases.js';
import type { RoundWrite } from './round-writer.js';
import { storeRounds } from './save-rounds.js';
import { VerifierConflict } from './verifier-errors.js';

/**
 * Bytes of history rows one page reads at most (past the first row): a row keeps up to 100 failures of
 * up to 4 KB each (`storedFailures`), so `limit=1000` could otherwise read and send ~400 MB at once.
 */
export const MAX_HISTORY_PAGE_BYTES = 4 * 1024 * 1024;
/** What a row's other columns weigh in a reply, as JSON, at most (ids, times, nonce, counts). */
const HISTORY_ROW_BYTES = 512;

/** A page of an agent's history, newest first; `nextBefore` when the page ended at its byte bound. */
export interface HistoryPage {
  readonly rows: HistoryRecord[];
  readonly nextBefore?: number;
}

const AGENTS = 'verifier_agents';
const HISTORY = 'verifier_attestation_history';
const RUNTIME_POLICIES = 'verifier_runtime_policies';
const MB_POLICIES = 'verifier_mb_policies';

/** PostgreSQL `unique_violation`. */
const UNIQUE_VIOLATION = '23505';

/** Every column of an agent's row (`a`), and its version as `row_version` (`VerifierAgentRecord.rowVersion`). */
const ROW_AND_VERSION = `a.*, ${agentVersionSql('a')} as row_version`;

/** One round to store (the history is undefined for a round that judged nothing: V delivered on a retry). */
export type SaveRoundInput = RoundWrite;

/**
 * The verifier's agent rows and their history (knex; PostgreSQL or PGlite — the same SQL, including
 * `FOR UPDATE SKIP LOCKED`). The pull loop's hot path is `saveRound`: ONE statement per round that
 * updates the agent row, renews the lease and appends the history row.
 */
export class VerifierAgentRepository {
  /** Who polls which agent: claims, renewals and releases of the leases (`AgentLeases`). */
  readonly leases: AgentLeases;

  constructor(private readonly knex: Knex) {
    this.leases = new AgentLeases(knex);
  }

  /**
   * Stores a newly enrolled agent, owned by `owner` (the process that will poll it).
   * @throws VerifierConflict when the id is taken.
   */
  async insert(enrolment: VerifierAgentEnrolment, state: AgentAttestationState, owner: string | null, leaseSeconds: number): Promise<void> {
    try {
      await this.knex(AGENTS).insert({
        ...enrolmentColumns(enrolment),
        ...stateColumns(state),
        owner,
        lease_expires_at: owner === null ? null : leaseUntil(this.knex, leaseSeconds),
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new VerifierConflict(`Agent of uuid ${enrolment.agentId} already exists`, { cause: error });
      }
      throw error;
    }
  }

  async find(agentId: string): Promise<VerifierAgentRecord | undefined> {
    const row = (await this.knex(`${AGENTS} as a`).select(this.knex.raw(ROW_AND_VERSION)).where({ agent_id: agentId }).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : recordFromRow(row);
  }

  /** Ids of the agents of `verifierId` (every agent when undefined), of `tenant` when given, sorted. */
  async listIds(verifierId: string | undefined, tenant?: string): Promise<string[]> {
    const query = this.knex(AGENTS).select('agent_id').orderBy('agent_id');
    if (verifierId !== undefined) {
      void query.where({ verifier_id: verifierId });
    }
    if (tenant !== undefined) {
      void query.where({ tenant });
    }
    return ((await query) as { agent_id: string }[]).map((row) => row.agent_id);
  }

  /** Every agent of `verifierId` (every agent when undefined), sorted by id (the `bulk` listing). */
  async listRecords(verifierId: string | undefined, tenant?: string): Promise<VerifierAgentRecord[]> {
    const query = this.knex(AGENTS).select('*').orderBy('agent_id');
    if (verifierId !== undefined) {
      void query.where({ verifier_id: verifierId });
    }
    if (tenant !== undefined) {
      void query.where({ tenant });
    }
    return ((await query) as Record<string, unknown>[]).map(recordFromRow);
  }

  /**
   * Stores one round (the pull loop batches through `RoundWriter`; same statement): the state,
   * `last_attempt_at`, a renewed lease and the history row. Only while `owner` still holds the agent
   * and no operator stopped or deleted it meanwhile (state 8 or 10); `false` tells the loop to re-read
   * the row and act on what it finds, and then no history row is written either, so the agent's `pass`
   * rows always match its `attestation_count`.
   */
  async saveRound(input: SaveRoundInput): Promise<boolean> {
    return (await storeRounds(this.knex, [input])).has(input.agentId);
  }

  /**
   * An operator's stop (`TENANT_FAILED`) or delete (`TERMINATED`) of an agent of `verifierId` whose
   * state is one of `from` (any state when undefined). Resolves to the state before the change, or
   * undefined when nothing matched. The row keeps the version it was stopped from
   * (`stopped_from_version`): the one version whose FAIL, waiting to be stored, is still recorded over
   * the stop, once (`SAVE_ROUNDS`). A row already stopped keeps the token of its first stop (a FAIL
   * decided from the stopped row is not recorded over it).
   */
  async stopByOperator(agentId: string, verifierId: string, to: OperatorStop, options: { from?: readonly OperationalState[] } = {}): Promise<OperationalState | undefined> {
    return this.changeState(agentId, verifierId, (before, trx) => {
      if (options.from !== undefined && !options.from.includes(before)) return undefined;
      // The right-hand side reads the row before this update (and before the version trigger moves it).
      return OPERATOR_STOPPED_STATES.includes(before) ? { operational_state: to } : { operational_state: to, stopped_from_version: trx.raw('??', ['content_version']) };
    });
  }

  /**
   * `PUT …/reactivate` of an agent of `verifierId`: the columns `decideReactivation` sets, and `owner`
   * takes the agent over. Resolves to the state before, or undefined when it is not there or TERMINATED.
   */
  async reactivate(agentId: string, verifierId: string, owner: string, leaseSeconds: number): Promise<OperationalState | undefined> {
    return this.changeState(agentId, verifierId, (before, trx) => {
      const reactivated = decideReactivation(before);
      return reactivated === undefined
        ? undefined
        : { ...reactivationColumns(reactivated), stopped_from_version: null, owner, lease_expires_at: leaseUntil(trx, leaseSeconds) };
    });
  }

  /** An operator's change: the columns `change` gives for the locked row's state (undefined: none), resolving to the state before. */
  private async changeState(
    agentId: string,
    verifierId: string,
    change: (before: OperationalState, trx: Knex.Transaction) => Record<string, unknown> | undefined,
  ): Promise<OperationalState | undefined> {
    return this.knex.transaction(async (trx) => {
      const row = (await trx(AGENTS)
        .select('operational_state')
        .where({ agent_id: agentId, verifier_id: verifierId })
        .forUpdate()
        .first()) as { operational_state: number } | undefined;
      if (row === undefined) {
        return undefined;
      }
      const before = row.operational_state as OperationalState;
      const columns = change(before, trx);
      if (columns === undefined) {
        return undefined;
      }
      await trx(AGENTS)
        .update({ ...columns, updated_at: trx.fn.now() })
        .where({ agent_id: agentId });
      return before;
    });
  }

  /**
   * Deletes the agent and the policies of its tenant stored under its own id (Keylime keeps an agent's
   * unnamed policies under the agent id) when no other agent uses them. Resolves to false when it did
   * not exist.
   */
  async delete(agentId: string): Promise<boolean> {
    return this.knex.transaction(async (trx) => {
      // `returning` gives the same answer on pg and knex-pglite (whose plain delete count differs).
      const deleted = (await trx(AGENTS).where({ agent_id: agentId }).delete().returning(['agent_id', 'tenant'])) as { tenant: string }[];
      const tenant = deleted[0]?.tenant;
      if (tenant === undefined) {
        return false;
      }
      // A push agent's sessions and attestations go with it: a re-enrolment starts afresh.
      await trx('verifier_push_sessions').where({ agent_id: agentId }).delete();
      await trx('verifier_push_attestations').where({ agent_id: agentId }).delete();
      for (const [table, column] of [
        [RUNTIME_POLICIES, 'runtime_policy_name'],
        [MB_POLICIES, 'mb_policy_name'],
      ] as const) {
        await trx(table)
          .where({ name: agentId, tenant })
          .whereNotExists(trx(AGENTS).select(trx.raw('1')).where(column, agentId))
          .delete();
      }
      return true;
    });
  }

  /**
   * Stores the agent API version negotiated after the agent refused the enrolled one, while `owner`
   * still holds the agent and its row is still at `rowVersion` (an operator's change since wins).
   * Resolves to the row's new version, or undefined when no row changed.
   */
  async updateSupportedVersion(agentId: string, owner: string, rowVersion: string, version: string): Promise<string | undefined> {
    const rows = (await this.knex(AGENTS)
      .update({ supported_version: version })
      .where({ agent_id: agentId, owner })
      .andWhereRaw(`${agentVersionSql(AGENTS)} = ?`, [rowVersion])
      .returning(this.knex.raw(`${agentVersionSql(AGENTS)} as row_version`))) as unknown as { row_version: string }[];
    return rows[0]?.row_version;
  }

  /**
   * Whether the agent's history holds the verdict stored with `roundId` (`RoundWrite.roundId`, fresh per
   * verdict): after a write whose COMMIT got no answer, it tells a verdict the database stored from
   * one it did not — with a quote nonce or without one.
   */
  async holdsRound(agentId: string, roundId: string): Promise<boolean> {
    return (await this.knex(HISTORY).where({ agent_id: agentId, round_id: roundId }).first('id')) !== undefined;
  }

  /**
   * A page of an agent's history rows, newest first, from the row before id `before` (from the newest
   * without it): at most `limit` rows, and no more rows once those read reach `MAX_HISTORY_PAGE_BYTES`
   * (a row's failures, its omitted event ids and `HISTORY_ROW_BYTES`, summed in the query, so rows past
   * the bound are never read); the first row is always read. `nextBefore` (the page's last id) is set
   * when the bytes ended the page first: the next page starts there. Only rows written for `tenant`'s
   * node of this id, or, without a tenant, every row (a row of unknown tenant included).
   */
  async history(agentId: string, limit: number, tenant: string | undefined, before?: number): Promise<HistoryPage> {
    const rowBytes = `octet_length(failures::text) + octet_length(omitted_event_ids::text) + ${HISTORY_ROW_BYTES}`;
    const inner = this.knex(HISTORY)
      .select('*', this.knex.raw(`${rowBytes} as row_bytes`), this.knex.raw(`sum(${rowBytes}) over (order by id desc rows between unbounded preceding and current row) as page_bytes`))
      .where({ agent_id: agentId });
    if (tenant !== undefined) void inner.where({ tenant });
    if (before !== undefined) void inner.where('id', '<', before);
    void inner.orderBy('id', 'desc').limit(limit);
    const rows = (await this.knex.from(inner.as('page')).whereRaw('page_bytes - row_bytes < ?', [MAX_HISTORY_PAGE_BYTES]).orderBy('id', 'desc')) as Record<string, unknown>[];
    const last = rows[rows.length - 1];
    const full = last !== undefined && rows.length < limit && Number(last['page_bytes']) >= MAX_HISTORY_PAGE_BYTES;
    return { rows: rows.map(historyFromRow), ...(full ? { nextBefore: Number(last['id']) } : {}) };
  }
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION;
}
