import type { Knex } from 'knex';
import { freshWindow, type FreshWindow } from '../attestation/freshness.js';
import { LIVENESS_MODES, LIVENESS_STATUSES, storedLivenessStatus, type LivenessMode, type LivenessStatus } from '../attestation/liveness-decision.js';
import { livenessOperatorStatusOf } from '../attestation/liveness-operator-decision.js';
import { attestationStatus, operationalStateLabel, type AttestationStatus, type OperationalState } from '../attestation/operational-state.js';
import { operatorStatusOf } from '../attestation/operator-decision.js';
import type { StatusFreshnessBounds } from '../verifier/freshness-bounds.js';
import { nodeRow, shownTrustLevel, SHOWN_TRUST_LEVELS, type NodeRow, type ShownTrustLevel, type StatusClock } from './node-row.js';
import { readNodeTimeline, type TimelineEntry } from './node-timeline.js';

/** Rows of the node table per page. */
export const NODES_PAGE_SIZE = 50;
/** Columns the node table sorts by, and the SQL each one means. */
export const NODE_SORTS = {
  id: 'agent_id',
  state: 'operational_state',
  attestations: 'attestation_count',
  success: 'last_successful_attestation',
  event: 'last_event_id',
  trust: `array_position(array['unknown', 'id-only', 'id-secret', 'emulated-tpm', 'hardware-tpm']::text[], trust_level::text)`,
} as const;
export type NodeSort = keyof typeof NODE_SORTS;

export interface FleetOverview {
  /** Agents attested with a TPM (the verifier's agents). */
  readonly total: number;
  /** Agents per operational state code. */
  readonly byState: ReadonlyArray<{ readonly state: number; readonly label: string; readonly count: number }>;
  /** Per status as the status API shows it (`operatorStatus`): a stale PASS counts as PENDING. */
  readonly byStatus: Readonly<Record<AttestationStatus, number>>;
  /** Agents whose state says PASS but whose last success is older than the bound (in `byStatus.PENDING`). */
  readonly stalePasses: number;
  /** Rounds decided (pass or fail) in the last minute. */
  readonly attestationsLastMinute: number;
  readonly failuresLastHour: number;
  /** Polled agents whose last attempt is older than the late bound (see `lateAfterSeconds`). */
  readonly lateRounds: number;
  /**
   * Agents attested with a TPM per the trust level their enrolment claims (`unknown`: none), which no
   * quote checks. Apart from `byLiveness`, whose level every check proves: one count held both.
   */
  readonly byClaimedTrustLevel: Readonly<Record<ShownTrustLevel, number>>;
  /**
   * Nodes without a TPM, checked for liveness only (no integrity evidence), per identity mode (their
   * trust level: `id-secret` proves the host secret, `id-only` only answers with its id) and liveness
   * status as the status API shows it (a stale `alive` is `pending`).
   */
  readonly byLiveness: Readonly<Record<LivenessMode, Readonly<Record<LivenessStatus, number>>>>;
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

/** Policies in use per page of the policies page. */
export const POLICIES_PAGE_SIZE = 100;

export interface PolicyPage {
  readonly uses: readonly PolicyUse[];
  /** Policies in use in all. */
  readonly total: number;
  readonly page: number;
  readonly pages: number;
}

export interface PolicyUse {
  readonly kind: 'runtime' | 'measured boot';
  readonly name: string;
  readonly agents: number;
  readonly updatedAt: string;
}

const POLLED_STATES = [3, 4, 5, 6];

/**
 * The dashboard's reads, each one statement on the verifier's tables, bounded (paged, limited) and
 * scoped to one tenant when `tenant` is given (a token), or to every tenant (a client certificate).
 */
export class DashboardQueries {
  constructor(
    private readonly knex: Knex,
    /** Seconds without an attempt after which a polled agent's round counts as late. */
    private readonly lateAfterSeconds: number,
    /** The status API's bounds: a PASS or `alive` older than them is shown PENDING, everywhere. */
    private readonly bounds: StatusFreshnessBounds,
    /**
     * Now in unix seconds on the clock the stored successes were stamped on: the database's
     * (`DatabaseClock.now`), which every verifier process stamps on.
     */
    private readonly now: () => number,
  ) {}

  /** Rows are judged on the database's clock, which stamped them, as the status API judges them. */
  private clock(now = this.now()): StatusClock {
    return { now, bounds: this.bounds };
  }

  /** SQL true when `time` (a stored time, in whole seconds as `nodeRow` reads it) lies in `window`; false for null. */
  private inWindow(time: Knex.Raw | Knex.Ref<string, Record<string, string>>, window: FreshWindow): Knex.Raw {
    return this.knex.raw(`coalesce(floor(extract(epoch from ?)) between ? and ?, false)`, [time, window.earliest, window.latest]);
  }

  /**
   * A liveness node's last answer on the clock of `now` (`this.now`, the database's in a verifier): the
   * monitor dates it on the database's own reading (liveness-monitor.ts), and rows are judged at `now`.
   * Moved by whole seconds (as the status API moves `last_seen`): the two clocks are read a few
   * milliseconds apart, and a row moved by that jitter would differ at every live update's tick.
   */
  private livenessLastSeen(now: number): Knex.Raw {
    return this.knex.raw(`last_seen_at + round(?::float8 - extract(epoch from now())) * interval '1 second'`, [now]);
  }

  private agents(tenant: string | undefined): Knex.QueryBuilder {
    const query = this.knex('verifier_agents');
    return tenant === undefined ? query : query.where('tenant', tenant);
  }

  private liveness(tenant: string | undefined): Knex.QueryBuilder {
    const query = this.knex('verifier_liveness');
    return tenant === undefined ? query : query.where('tenant', tenant);
  }

  /** Attested agents and liveness-checked nodes as one relation `n` with the columns of `nodeRow`, to be judged at `now`. */
  private allNodes(tenant: string | undefined, now: number): Knex.QueryBuilder {
    const raw = (sql: string): Knex.Raw => this.knex.raw(sql);
    const attested = this.agents(tenant).select([
      ...SHARED_COLUMNS.slice(0, 2),
      ...ATTESTED_ONLY_COLUMNS,
      ...SHARED_COLUMNS.slice(2),
      raw("coalesce(trust_level, 'unknown') as trust_level"),
      raw('null::text as liveness_status'),
      raw('null::text as last_failure'),
      raw('null::timestamptz as last_seen_at'),
    ]);
    const checked = this.liveness(tenant).select([
      ...SHARED_COLUMNS.slice(0, 2),
      raw('null::integer as operational_state'),
      raw('0 as attestation_count'),
      raw('null::timestamptz as last_successful_attestation'),
      raw('null::text as last_event_id'),
      raw('null::text as runtime_policy_name'),
      raw('null::text as mb_policy_name'),
      ...SHARED_COLUMNS.slice(2),
      'trust_level',
      raw('status as liveness_status'),
      'last_failure',
      this.knex.raw('? as last_seen_at', [this.livenessLastSeen(now)]),
    ]);
    return this.knex.from(this.knex.raw('(? union all ?) as n', [attested, checked]));
  }

  private history(tenant: string | undefined): Knex.QueryBuilder {
    const query = this.knex('verifier_attestation_history as h');
    return tenant === undefined ? query : query.where('h.tenant', tenant);
  }

  async overview(tenant: string | undefined): Promise<FleetOverview> {
    const now = this.now();
    const states = (await this.agents(tenant)
      .select('operational_state', { fresh: this.inWindow(this.knex.ref('last_successful_attestation'), freshWindow(now, this.bounds.pass)) })
      .count({ n: '*' })
      .groupBy('operational_state', 'fresh')
      .orderBy('operational_state')) as { operational_state: number; fresh: boolean; n: string | number }[];
    const byStatus: Record<AttestationStatus, number> = { PASS: 0, FAIL: 0, PENDING: 0 };
    let stalePasses = 0;
    const perState = new Map<OperationalState, number>();
    for (const row of states) {
      const state = row.operational_state as OperationalState;
      const count = Number(row.n);
      const shown = operatorStatusOf(attestationStatus({ operationalState: state }), row.fresh);
      byStatus[shown.attestationStatus] += count;
      if (shown.stale) stalePasses += count;
      perState.set(state, (perState.get(state) ?? 0) + count);
    }
    const byState = [...perState].map(([state, count]) => ({ state, label: operationalStateLabel(state), count }));
    const [minute, hour, late, levels, liveness] = await Promise.all([
      this.history(tenant).whereIn('h.outcome', ['pass', 'fail']).where('h.attempted_at', '>', this.knex.raw("now() - interval '1 minute'")).count({ n: '*' }).first(),
      this.history(tenant).where('h.outcome', 'fail').where('h.attempted_at', '>', this.knex.raw("now() - interval '1 hour'")).count({ n: '*' }).first(),
      this.agents(tenant)
        .whereIn('operational_state', POLLED_STATES)
        .where('last_attempt_at', '<', this.knex.raw('now() - make_interval(secs => ?)', [this.lateAfterSeconds]))
        .count({ n: '*' })
        .first(),
      this.agents(tenant).select('trust_level').count({ n: '*' }).groupBy('trust_level') as Promise<{ trust_level: string | null; n: string | number }[]>,
      this.liveness(tenant)
        .select('identity_mode', 'status', { fresh: this.inWindow(this.livenessLastSeen(now), freshWindow(now, this.bounds.liveness)) })
        .count({ n: '*' })
        .groupBy('identity_mode', 'status', 'fresh') as Promise<{ identity_mode: string; status: string; fresh: boolean; n: string | number }[]>,
    ]);
    const byClaimedTrustLevel = Object.fromEntries(SHOWN_TRUST_LEVELS.map((level) => [level, 0])) as Record<ShownTrustLevel, number>;
    for (const row of levels) byClaimedTrustLevel[shownTrustLevel(row.trust_level)] += Number(row.n);
    const byLiveness = Object.fromEntries(LIVENESS_MODES.map((mode) => [mode, Object.fromEntries(LIVENESS_STATUSES.map((status) => [status, 0]))])) as Record<LivenessMode, Record<LivenessStatus, number>>;
    for (const row of liveness) {
      // As the liveness repository reads it: anything but id-secret is the weaker id-only.
      const mode: LivenessMode = row.identity_mode === 'id-secret' ? 'id-secret' : 'id-only';
      byLiveness[mode][livenessOperatorStatusOf(storedLivenessStatus(row.status), row.fresh).status] += Number(row.n);
    }
    return {
      total: byState.reduce((sum, row) => sum + row.count, 0),
      byState,
      byStatus,
      stalePasses,
      attestationsLastMinute: Number((minute as { n: string }).n),
      failuresLastHour: Number((hour as { n: string }).n),
      lateRounds: Number((late as { n: string }).n),
      byClaimedTrustLevel,
      byLiveness,
    };
  }

  /**
   * One page of the node table (attested and liveness-checked nodes): a case-insensitive substring of
   * the id, address, last event id or trust level.
   */
  async nodes(tenant: string | undefined, query: NodeQuery): Promise<NodePage> {
    const clock = this.clock();
    const filtered = (): Knex.QueryBuilder => {
      const builder = this.allNodes(tenant, clock.now);
      if (holdsNul(query.search)) {
        void builder.whereRaw('false');
      } else if (query.search !== '') {
        const needle = query.search.toLowerCase();
        void builder.where((where) => {
          void where
            .whereRaw('position(? in lower(agent_id)) > 0', [needle])
            .orWhereRaw("position(? in lower(coalesce(ip, ''))) > 0", [needle])
            .orWhereRaw("position(? in lower(coalesce(last_event_id, ''))) > 0", [needle])
            .orWhereRaw('position(? in trust_level) > 0', [needle]);
        });
      }
      return builder;
    };
    const total = Number(((await filtered().count({ n: '*' }).first()) as { n: string }).n);
    const pages = Math.max(1, Math.ceil(total / NODES_PAGE_SIZE));
    const page = Math.min(Math.max(1, query.page), pages);
    const direction = query.descending ? 'desc' : 'asc';
    const rows = (await filtered()
      .select('*')
      .orderByRaw(`${NODE_SORTS[query.sort]} ${direction} nulls last, agent_id ${direction}`)
      .limit(NODES_PAGE_SIZE)
      .offset((page - 1) * NODES_PAGE_SIZE)) as Record<string, unknown>[];
    return { rows: rows.map((row) => nodeRow(row, clock)), total, page, pages };
  }

  async node(tenant: string | undefined, agentId: string): Promise<NodeRow | undefined> {
    if (holdsNul(agentId)) return undefined;
    const clock = this.clock();
    const row = (await this.allNodes(tenant, clock.now).select('*').where('agent_id', agentId).first()) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : nodeRow(row, clock);
  }

  /**
   * The nodes of `agentIds` that `tenant` may see (every tenant's when undefined), judged now: the rows
   * a tab shows, read by their key whatever the fleet's size. Ids it may not see, and unknown ones, are
   * left out.
   */
  async nodesByIds(tenant: string | undefined, agentIds: readonly string[]): Promise<NodeRow[]> {
    const ids = agentIds.filter((id) => !holdsNul(id));
    if (ids.length === 0) return [];
    const clock = this.clock();
    const rows = (await this.allNodes(tenant, clock.now).select('*').whereIn('agent_id', ids)) as Record<string, unknown>[];
    return rows.map((row) => nodeRow(row, clock));
  }

  /** The node's timeline as `tenant`'s viewer sees it (every tenant's when undefined), newest first (`readNodeTimeline`). */
  timeline(tenant: string | undefined, node: NodeRow): Promise<TimelineEntry[]> {
    return readNodeTimeline(this.knex, node, tenant);
  }

  /**
   * A page of the runtime and measured-boot policies of `tenant` (every tenant when undefined) its
   * agents use, with how many use each: runtime first, each kind by name, `POLICIES_PAGE_SIZE` a page.
   * Keylime's inline policies are stored one per agent (under its id), so a fleet's page would list
   * every agent.
   */
  async policiesInUse(tenant: string | undefined, page = 1): Promise<PolicyPage> {
    const kinds = (
      [
        ['runtime', 'runtime_policy_name', 'verifier_runtime_policies'],
        ['measured boot', 'mb_policy_name', 'verifier_mb_policies'],
      ] as const
    ).map(([kind, column, table], order) =>
      this.knex(`${table} as p`)
        .select(this.knex.raw('? as kind', [kind]), this.knex.raw('? as kind_order', [order]), 'p.name', 'p.updated_at')
        .count({ n: 'a.agent_id' })
        .join('verifier_agents as a', `a.${column}`, 'p.name')
        .modify((builder) => (tenant === undefined ? builder : builder.where({ 'a.tenant': tenant, 'p.tenant': tenant })))
        .groupBy('p.name', 'p.updated_at'),
    );
    const used = (): Knex.QueryBuilder => this.knex.from(this.knex.raw('(? union all ?) as u', kinds));
    const total = Number(((await used().count({ n: '*' }).first()) as { n: string | number }).n);
    const pages = Math.max(1, Math.ceil(total / POLICIES_PAGE_SIZE));
    const shown = Math.min(Math.max(1, page), pages);
    const rows = (await used()
      .select('*')
      .orderBy([{ column: 'kind_order' }, { column: 'name' }])
      .limit(POLICIES_PAGE_SIZE)
      .offset((shown - 1) * POLICIES_PAGE_SIZE)) as { kind: PolicyUse['kind']; name: string; updated_at: Date; n: string | number }[];
    const uses = rows.map((row) => ({ kind: row.kind, name: row.name, agents: Number(row.n), updatedAt: new Date(row.updated_at).toISOString() }));
    return { uses, total, page: shown, pages };
  }
}

/** Columns both tables have, in `allNodes` order around the attested-only ones. */
const SHARED_COLUMNS = ['agent_id', 'tenant', 'ip', 'port', 'updated_at'];
const ATTESTED_ONLY_COLUMNS = ['operational_state', 'attestation_count', 'last_successful_attestation', 'last_event_id', 'runtime_policy_name', 'mb_policy_name'];

/** PostgreSQL text holds no NUL (as a parameter it is an encoding error, a 500): such text matches nothing. */
function holdsNul(text: string): boolean {
  return text.includes('\u0000');
}
