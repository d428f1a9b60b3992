import type { Knex } from 'knex';
import { attestationStatus, operationalStateLabel, type AttestationStatus, type OperationalState } from '../attestation/operational-state.js';

/** Rows of the node table per page. */
export const NODES_PAGE_SIZE = 50;
/** Columns the node table sorts by, and the SQL each one means. */
export const NODE_SORTS = {
  id: 'agent_id',
  state: 'operational_state',
  attestations: 'attestation_count',
  success: 'last_successful_attestation',
  event: 'last_event_id',
} as const;
export type NodeSort = keyof typeof NODE_SORTS;

export interface FleetOverview {
  readonly total: number;
  /** Agents per operational state code. */
  readonly byState: ReadonlyArray<{ readonly state: number; readonly label: string; readonly count: number }>;
  readonly byStatus: Readonly<Record<AttestationStatus, number>>;
  /** Rounds decided (pass or fail) in the last minute. */
  readonly attestationsLastMinute: number;
  readonly failuresLastHour: number;
  /** Polled agents whose last attempt is older than the late bound (see `lateAfterSeconds`). */
  readonly lateRounds: number;
}

export interface NodeRow {
  readonly agentId: string;
  readonly tenant: string;
  readonly state: number;
  readonly label: string;
  readonly status: AttestationStatus;
  readonly attestationCount: number;
  readonly lastSuccess: string | null;
  readonly lastEventId: string | null;
  readonly runtimePolicy: string | null;
  readonly mbPolicy: string | null;
  readonly ip: string | null;
  readonly port: number | null;
}

export interface NodePage {
  readonly rows: readonly NodeRow[];
  readonly total: number;
  readonly page: number;
  readonly pages: number;
}

export interface NodeQuery {
  readonly search: string;
  readonly sort: NodeSort;
  readonly descending: boolean;
  readonly page: number;
}

/** One entry of a node's timeline, newest first. */
export interface TimelineEntry {
  readonly at: string;
  readonly kind: 'pass' | 'fail' | 'state' | 'admin';
  readonly title: string;
  readonly eventIds: readonly string[];
  /** Failure contexts or the admin action's details, as JSON text. */
  readonly detail: string;
  /** For a run of passes: how many. */
  readonly count: number;
}

export interface PolicyUse {
  readonly kind: 'runtime' | 'measured boot';
  readonly name: string;
  readonly agents: number;
  readonly updatedAt: string;
}

const POLLED_STATES = [3, 4, 5, 6];
const HISTORY_ROWS_SHOWN = 500;

/**
 * The dashboard's reads, each one statement on the verifier's tables, bounded (paged, limited) and
 * scoped to one tenant when `tenant` is given (a token), or to every tenant (a client certificate).
 */
export class DashboardQueries {
  constructor(
    private readonly knex: Knex,
    /** Seconds without an attempt after which a polled agent's round counts as late. */
    private readonly lateAfterSeconds: number,
  ) {}

  private agents(tenant: string | undefined): Knex.QueryBuilder {
    const query = this.knex('verifier_agents');
    return tenant === undefined ? query : query.where('tenant', tenant);
  }

  private history(tenant: string | undefined): Knex.QueryBuilder {
    const query = this.knex('verifier_attestation_history as h');
    return tenant === undefined ? query : query.whereIn('h.agent_id', this.knex('verifier_agents').select('agent_id').where('tenant', tenant));
  }

  async overview(tenant: string | undefined): Promise<FleetOverview> {
    const states = (await this.agents(tenant).select('operational_state').count({ n: '*' }).groupBy('operational_state').orderBy('operational_state')) as {
      operational_state: number;
      n: string | number;
    }[];
    const byStatus: Record<AttestationStatus, number> = { PASS: 0, FAIL: 0, PENDING: 0 };
    const byState = states.map((row) => {
      const state = row.operational_state as OperationalState;
      const count = Number(row.n);
      byStatus[attestationStatus({ operationalState: state })] += count;
      return { state, label: operationalStateLabel(state), count };
    });
    const [minute, hour, late] = await Promise.all([
      this.history(tenant).whereIn('h.outcome', ['pass', 'fail']).where('h.attempted_at', '>', this.knex.raw("now() - interval '1 minute'")).count({ n: '*' }).first(),
      this.history(tenant).where('h.outcome', 'fail').where('h.attempted_at', '>', this.knex.raw("now() - interval '1 hour'")).count({ n: '*' }).first(),
      this.agents(tenant)
        .whereIn('operational_state', POLLED_STATES)
        .where('last_attempt_at', '<', this.knex.raw('now() - make_interval(secs => ?)', [this.lateAfterSeconds]))
        .count({ n: '*' })
        .first(),
    ]);
    return {
      total: byState.reduce((sum, row) => sum + row.count, 0),
      byState,
      byStatus,
      attestationsLastMinute: Number((minute as { n: string }).n),
      failuresLastHour: Number((hour as { n: string }).n),
      lateRounds: Number((late as { n: string }).n),
    };
  }

  /** One page of the node table: a case-insensitive substring of the id, address or last event id. */
  async nodes(tenant: string | undefined, query: NodeQuery): Promise<NodePage> {
    const filtered = (): Knex.QueryBuilder => {
      const builder = this.agents(tenant);
      if (query.search !== '') {
        const needle = query.search.toLowerCase();
        void builder.where((where) => {
          void where
            .whereRaw('position(? in lower(agent_id)) > 0', [needle])
            .orWhereRaw("position(? in lower(coalesce(ip, ''))) > 0", [needle])
            .orWhereRaw("position(? in lower(coalesce(last_event_id, ''))) > 0", [needle]);
        });
      }
      return builder;
    };
    const total = Number(((await filtered().count({ n: '*' }).first()) as { n: string }).n);
    const pages = Math.max(1, Math.ceil(total / NODES_PAGE_SIZE));
    const page = Math.min(Math.max(1, query.page), pages);
    const direction = query.descending ? 'desc' : 'asc';
    const rows = (await filtered()
      .select(NODE_COLUMNS)
      .orderByRaw(`${NODE_SORTS[query.sort]} ${direction} nulls last, agent_id ${direction}`)
      .limit(NODES_PAGE_SIZE)
      .offset((page - 1) * NODES_PAGE_SIZE)) as Record<string, unknown>[];
    return { rows: rows.map(nodeRow), total, page, pages };
  }

  async node(tenant: string | undefined, agentId: string): Promise<NodeRow | undefined> {
    const row = (await this.agents(tenant).select(NODE_COLUMNS).where('agent_id', agentId).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : nodeRow(row);
  }

  /** Agents whose row changed after `since` (for live updates), at most `limit`. */
  async changedSince(tenant: string | undefined, since: Date, limit: number): Promise<NodeRow[]> {
    const rows = (await this.agents(tenant).select(NODE_COLUMNS).where('updated_at', '>', since).orderBy('updated_at', 'desc').limit(limit)) as Record<string, unknown>[];
    return rows.map(nodeRow);
  }

  /**
   * The node's timeline from its last rounds and its audit stream: failures with their event ids and
   * contexts, state changes, runs of passes folded into one entry, and admin actions (enrolment,
   * stop, reactivate, policy changes on the policies it uses).
   */
  async timeline(node: NodeRow): Promise<TimelineEntry[]> {
    const rounds = (await this.knex('verifier_attestation_history')
      .select('attempted_at', 'outcome', 'operational_state', 'failures')
      .where('agent_id', node.agentId)
      .orderBy('id', 'desc')
      .limit(HISTORY_ROWS_SHOWN)) as { attempted_at: Date; outcome: string; operational_state: number; failures: unknown }[];
    const entries: TimelineEntry[] = [];
    // Oldest first, to see state changes and fold passes; reversed at the end.
    let previousState: number | undefined;
    for (const round of rounds.reverse()) {
      const at = new Date(round.attempted_at).toISOString();
      if (previousState !== undefined && round.operational_state !== previousState) {
        entries.push({ at, kind: 'state', title: `${operationalStateLabel(previousState as OperationalState)} → ${operationalStateLabel(round.operational_state as OperationalState)}`, eventIds: [], detail: '', count: 1 });
      }
      previousState = round.operational_state;
      if (round.outcome === 'pass') {
        const last = entries[entries.length - 1];
        if (last?.kind === 'pass') {
          entries[entries.length - 1] = { ...last, at, count: last.count + 1, title: `${last.count + 1} passes` };
        } else {
          entries.push({ at, kind: 'pass', title: 'pass', eventIds: [], detail: '', count: 1 });
        }
        continue;
      }
      const failures = (typeof round.failures === 'string' ? JSON.parse(round.failures) : round.failures) as { event_id: string; context: unknown }[];
      entries.push({
        at,
        kind: 'fail',
        title: round.outcome === 'retry' ? 'no answer (retry)' : 'fail',
        eventIds: failures.map((failure) => failure.event_id),
        detail: failures.length === 0 ? '' : JSON.stringify(failures.map((failure) => ({ event_id: failure.event_id, context: failure.context })), null, 1),
        count: 1,
      });
    }
    const policyNames = [node.runtimePolicy, node.mbPolicy].filter((name): name is string => name !== null);
    const actions = (await this.knex('audit_records')
      .select('at', 'actor', 'action', 'details')
      .where((where) => {
        void where.where({ stream: node.agentId }).whereNot('action', 'verdict');
      })
      .orWhere((where) => {
        const names = policyNames.map(() => '?').join(', ');
        void where.where({ stream: 'fleet' }).whereRaw(policyNames.length === 0 ? 'false' : `(details::jsonb -> 'params' ->> 'name') in (${names})`, policyNames);
      })
      .orderBy('at', 'desc')
      .limit(HISTORY_ROWS_SHOWN)) as { at: string; actor: string; action: string; details: string }[];
    for (const action of actions) {
      entries.push({ at: action.at, kind: 'admin', title: `${action.action} by ${action.actor}`, eventIds: [], detail: action.details, count: 1 });
    }
    return entries.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  }

  /** Runtime and measured-boot policies the visible agents use, with how many use each. */
  async policiesInUse(tenant: string | undefined): Promise<PolicyUse[]> {
    const uses: PolicyUse[] = [];
    for (const [kind, column, table] of [
      ['runtime', 'runtime_policy_name', 'verifier_runtime_policies'],
      ['measured boot', 'mb_policy_name', 'verifier_mb_policies'],
    ] as const) {
      const rows = (await this.knex(`${table} as p`)
        .select('p.name', 'p.updated_at')
        .count({ n: 'a.agent_id' })
        .join('verifier_agents as a', `a.${column}`, 'p.name')
        .modify((builder) => (tenant === undefined ? builder : builder.where('a.tenant', tenant)))
        .groupBy('p.name', 'p.updated_at')
        .orderBy('p.name')) as { name: string; updated_at: Date; n: string | number }[];
      uses.push(...rows.map((row) => ({ kind, name: row.name, agents: Number(row.n), updatedAt: new Date(row.updated_at).toISOString() })));
    }
    return uses;
  }
}

const NODE_COLUMNS = [
  'agent_id',
  'tenant',
  'operational_state',
  'attestation_count',
  'last_successful_attestation',
  'last_event_id',
  'runtime_policy_name',
  'mb_policy_name',
  'ip',
  'port',
];

function nodeRow(row: Record<string, unknown>): NodeRow {
  const state = Number(row['operational_state']) as OperationalState;
  const success = row['last_successful_attestation'];
  return {
    agentId: String(row['agent_id']),
    tenant: String(row['tenant']),
    state,
    label: operationalStateLabel(state),
    status: attestationStatus({ operationalState: state }),
    attestationCount: Number(row['attestation_count']),
    lastSuccess: success === null || success === undefined ? null : new Date(success as string).toISOString(),
    lastEventId: (row['last_event_id'] as string | null) ?? null,
    runtimePolicy: (row['runtime_policy_name'] as string | null) ?? null,
    mbPolicy: (row['mb_policy_name'] as string | null) ?? null,
    ip: (row['ip'] as string | null) ?? null,
    port: row['port'] === null || row['port'] === undefined ? null : Number(row['port']),
  };
}
