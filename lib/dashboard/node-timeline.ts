import type { Knex } from 'knex';
import { livenessStatusWord, storedLivenessStatus } from '../attestation/liveness-decision.js';
import { operationalStateLabel, type OperationalState } from '../attestation/operational-state.js';
import { ROLES } from '../auth/roles.js';
import { FLEET_STREAM } from '../verifier/reserved-agent-ids.js';
import type { NodeRow } from './node-row.js';
import { visibleLine, visibleText } from './visible-text.js';

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
  /** Its event ids and detail are left out: the page's bound (`DETAIL_CHARS_SHOWN`) was spent on newer entries. */
  readonly leftOut: boolean;
}

/** Rows read per source: the newest rounds, liveness changes and admin actions. */
export const HISTORY_ROWS_SHOWN = 500;
/**
 * A round's history row keeps its first `MAX_STORED_FAILURES` failures and counts the rest (rows
 * written before that bound keep every failure, one per IMA line an agent sent): a round shows its
 * first failures, each context cut at `MAX_CONTEXT_CHARS` of JSON as shown (`shownContext`), and its
 * first distinct event ids, those left out of the row after its own; the database sends only the count of the rest.
 */
const FAILURES_SHOWN = 20;
const EVENT_IDS_SHOWN = 20;
const MAX_CONTEXT_CHARS = 4096;
/**
 * Characters of event ids and details (as shown) of a whole timeline, newest entries first (the
 * newest whole, whatever its size); older entries show their time and title only. Each round is bounded, but a page shows 500 of them: a node
 * that failed 500 rounds with 20 contexts of 4,000 quotes made its page 186 million characters. The
 * database sends the contexts of the newest rounds only, up to as many characters.
 */
export const DETAIL_CHARS_SHOWN = 100_000;
/**
 * Rounds whose failures are read at most, newest first: the database reads a round's failures whole
 * to count them and find their event ids (a round keeps one per IMA line, and a node failing round
 * after round with short contexts stayed within `DETAIL_CHARS_SHOWN` for all 500 of them).
 */
export const ROUNDS_DETAILED = 20;

/**
 * The node's timeline from its last rounds and its audit stream: failures with their event ids and
 * contexts, state changes, runs of passes folded into one entry, and admin actions (enrolment,
 * stop, reactivate, policy changes on the policies it uses). Rounds, liveness changes and actions on
 * the node are only those of the node's tenant: a deleted node's rows stay, and another tenant may
 * enrol its id since. A viewer of `viewerTenant` (every tenant's when undefined) sees only the policy
 * actions of certificates and of its own tenant's tokens. The three reads run concurrently. Event ids
 * and details are shown up to `DETAIL_CHARS_SHOWN`, newest first (`leftOut` past it).
 */
export async function readNodeTimeline(knex: Knex, node: NodeRow, viewerTenant: string | undefined): Promise<TimelineEntry[]> {
  const [rounds, liveness, actions] = await Promise.all([
    roundEntries(knex, node),
    node.liveness === null ? [] : livenessChanges(knex, node),
    adminActions(knex, node, viewerTenant),
  ]);
  // Contexts, reasons and details quote what nodes sent: nothing in them may reorder or hide the text shown.
  const newestFirst = [...rounds, ...liveness, ...actions]
    .map((entry) => ({ ...entry, detail: visibleText(entry.detail) }))
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  let left = DETAIL_CHARS_SHOWN;
  return newestFirst.map((entry) => {
    const chars = entry.detail.length + entry.eventIds.reduce((sum, id) => sum + id.length, 0);
    // The newest entry is shown whole: it is bounded on its own (a round's 20 contexts).
    if (!entry.leftOut && (chars <= left || left === DETAIL_CHARS_SHOWN)) {
      left = Math.max(0, left - chars);
      return entry;
    }
    // Once one entry is left out, every older one is: the page shows the newest, not a pick.
    left = 0;
    return { ...entry, eventIds: [], detail: '', leftOut: true };
  });
}

/** The node's last rounds, oldest first: state changes, failures, and runs of passes folded. */
async function roundEntries(knex: Knex, node: NodeRow): Promise<TimelineEntry[]> {
  const firstFailures = `(select f, n from jsonb_array_elements(failures) with ordinality as t(f, n) order by n limit ${FAILURES_SHOWN}) s`;
  // The rows only: a round's failures are read (whole: a jsonb value is) by the levels below, for the rounds they detail.
  const recent = knex('verifier_attestation_history')
    .select('id', 'attempted_at', 'outcome', 'operational_state', 'failures', 'failures_omitted', 'omitted_event_ids')
    .where({ agent_id: node.agentId, tenant: node.tenant })
    .orderBy('id', 'desc')
    .limit(HISTORY_ROWS_SHOWN)
    .as('r');
  // Whether a round has failures, without reading them: an empty array takes at most the bytes of the
  // literal `[]` (5 stored, 8 in memory), one failure more. `newness`: 1 for the newest round with failures.
  const hasFailures = `pg_column_size(failures) > pg_column_size('[]'::jsonb)`;
  const numbered = knex
    .from(recent)
    .select('*', knex.raw(`${hasFailures} as has_failures`), knex.raw(`count(*) filter (where ${hasFailures}) over (order by id desc rows between unbounded preceding and current row) as newness`))
    .as('n');
  // The characters of the contexts the newest rounds with failures would send, as the database cuts them.
  const sized = knex
    .from(numbered)
    .select('*', knex.raw(`case when newness <= ? then (select coalesce(sum(least(length((s.f -> 'context')::text), ?)), 0) from ${firstFailures}) end as context_chars`, [ROUNDS_DETAILED, MAX_CONTEXT_CHARS]))
    .as('c');
  // Contexts and event ids of the newest rounds only, while those of the rounds after them are within the page's bound.
  const detailed = knex
    .from(sized)
    .select('*', knex.raw(`newness <= ? and coalesce(sum(context_chars) over (order by id desc rows between unbounded preceding and 1 preceding), 0) < ? as detailed`, [ROUNDS_DETAILED, DETAIL_CHARS_SHOWN]))
    .as('d');
  const rounds = (await knex
    .from(detailed)
    .select(
      'attempted_at',
      'outcome',
      'operational_state',
      'detailed',
      'has_failures',
      knex.raw('case when detailed then jsonb_array_length(failures) + failures_omitted end as failure_count'),
      knex.raw('case when detailed then omitted_event_ids end as omitted_event_ids'),
      knex.raw(
        `case when detailed then
           (select coalesce(jsonb_agg(jsonb_build_object('event_id', s.f ->> 'event_id', 'context', left((s.f -> 'context')::text, ?), 'context_chars', length((s.f -> 'context')::text)) order by s.n), '[]'::jsonb)
            from ${firstFailures}) end as shown_failures`,
        [MAX_CONTEXT_CHARS],
      ),
      knex.raw(
        `case when detailed then array(select d.e from (select f ->> 'event_id' as e, min(n) as first from jsonb_array_elements(failures) with ordinality as t(f, n) group by 1) d where d.e is not null order by d.first limit ?) end as event_ids`,
        [EVENT_IDS_SHOWN],
      ),
    )
    .orderBy('id', 'desc')) as {
    attempted_at: Date;
    outcome: string;
    operational_state: number;
    detailed: boolean;
    has_failures: boolean;
    failure_count: number | null;
    shown_failures: ShownFailure[] | null;
    event_ids: string[] | null;
    omitted_event_ids: string[] | null;
  }[];
  const entries: TimelineEntry[] = [];
  // Oldest first, to see state changes and fold passes; `timeline` puts the newest first.
  let previousState: number | undefined;
  for (const round of rounds.reverse()) {
    const at = new Date(round.attempted_at).toISOString();
    if (previousState !== undefined && round.operational_state !== previousState) {
      entries.push({ at, kind: 'state', title: `${operationalStateLabel(previousState as OperationalState)} → ${operationalStateLabel(round.operational_state as OperationalState)}`, eventIds: [], detail: '', count: 1, leftOut: false });
    }
    previousState = round.operational_state;
    if (round.outcome === 'pass') {
      const last = entries[entries.length - 1];
      if (last?.kind === 'pass') {
        entries[entries.length - 1] = { ...last, at, count: last.count + 1, title: `${last.count + 1} passes` };
      } else {
        entries.push({ at, kind: 'pass', title: 'pass', eventIds: [], detail: '', count: 1, leftOut: false });
      }
      continue;
    }
    const shown = round.detailed && round.shown_failures !== null ? round.shown_failures : undefined;
    entries.push({
      at,
      kind: 'fail',
      title: round.outcome === 'retry' ? 'no answer (retry)' : 'fail',
      eventIds: shown === undefined ? [] : [...new Set([...(round.event_ids ?? []), ...(round.omitted_event_ids ?? [])])].slice(0, EVENT_IDS_SHOWN),
      detail: shown === undefined ? '' : failureDetail(shown, round.failure_count ?? 0),
      count: 1,
      leftOut: shown === undefined && round.has_failures,
    });
  }
  return entries;
}

/** A failure of a round as read for the timeline: its context's JSON text cut at `MAX_CONTEXT_CHARS`, and that text's length. */
interface ShownFailure {
  readonly event_id: string | null;
  readonly context: string | null;
  readonly context_chars: number | null;
}

/** The round's shown failures as JSON, and how many more it holds; '' for none. */
function failureDetail(shown: readonly ShownFailure[], count: number): string {
  if (count === 0) return '';
  const failures = shown.map((failure) => ({ event_id: failure.event_id ?? undefined, context: shownContext(failure) }));
  const more = count - shown.length;
  return JSON.stringify(failures, null, 1) + (more > 0 ? `\n… and ${more.toLocaleString('en-US')} more failures` : '');
}

/**
 * A failure's context: its value when its JSON text is whole and, with invisible characters written as
 * escapes (`visibleText`: up to 12 characters each, so a context of 4,096 could be shown as 49,152),
 * within `MAX_CONTEXT_CHARS`; else that escaped text cut there, and the length of the whole.
 */
function shownContext(failure: ShownFailure): unknown {
  if (failure.context === null) return undefined;
  const visible = visibleText(failure.context);
  if ((failure.context_chars ?? 0) <= MAX_CONTEXT_CHARS && visible.length <= MAX_CONTEXT_CHARS) return JSON.parse(failure.context) as unknown;
  return { truncated: visible.slice(0, MAX_CONTEXT_CHARS), chars: failure.context_chars };
}

/**
 * An audit record's `details` as `jsonb`, for filtering only. `jsonb` refuses the JSON escapes of a
 * NUL and of a lone surrogate, which records stored before such texts were escaped (storableText) can
 * hold: one such record made every timeline that reads the fleet's records fail. They read as U+FFFD
 * here; the detail shown is the stored text.
 */
const DETAILS_JSONB = String.raw`regexp_replace(details, '\\u(0000|[dD][89abcdefABCDEF][0-9a-fA-F]{2})', '\\ufffd', 'g')::jsonb`;

/**
 * The policy name a `fleet` record's request named, as the text of its `details` starts
 * (`{"params":{"name":"<name>"`); null for any other record. Exactly the expression of
 * `audit_records_fleet_policy_idx` (migration `20261211170100-audit-fleet-policy-index`), so that the
 * read below is an index scan: a regular expression's match cannot fail on any stored record.
 */
const FLEET_POLICY_NAME_SQL = String.raw`substring(details from '^\{"params":\{"name":"([A-Za-z0-9_.:@+-]{1,255})"[,}]')`;
/**
 * An admin record of a successful change (status 2xx): `details` starting `{"params":{…},"status":2xx`
 * (`adminAuditEvent`), its params without escapes (a successful request's are validated names and ids,
 * and a refused request's path cannot write a status after them). Exactly the predicate of
 * `audit_records_changes_idx` and `audit_records_fleet_policy_changes_idx` (migration
 * `20261212180000-audit-successful-changes-indexes`), so that the reads below are index scans.
 */
const SUCCESSFUL_CHANGE_SQL = String.raw`details ~ '^\{"params":\{("[A-Za-z0-9_]+":"[^"\\]*"(,"[A-Za-z0-9_]+":"[^"\\]*")*){0,1}\},"status":2[0-9]{2}[,}]'`;
/**
 * `fleet` records read per policy name at most, newest first, before the tenant filter: every refused
 * request naming the policy is one (another tenant's token's too), and an operator token can make as many.
 */
export const FLEET_RECORDS_READ = 2_000;
/**
 * Refused requests (any status but 2xx) shown at most from the node's stream, and as many from its
 * policies': any operator token can send as many as it likes, so they are read apart from successful
 * changes and can never push those, or the node's enrolment, off the page.
 */
export const REFUSALS_SHOWN = 50;

/**
 * Admin actions on the node (its audit stream but verdicts) and changes of the policies it uses.
 * On the node's stream, only certificates' and the node's tenant's tokens' actions: another tenant's
 * token refused on the id (a 404), or acting on an earlier node of the id, is left out.
 * Policy names are global and the fleet stream holds every tenant's actions, so another tenant's
 * token acting on a name (a 404, or a change made before policies had tenants) is left out for a
 * viewer of one tenant: it would show that tenant's token subjects, roles and name. Each source is
 * read through its index, newest first, and bounded: successful changes (`HISTORY_ROWS_SHOWN` of the
 * node's, as many of its policies') apart from refused requests (`REFUSALS_SHOWN` of each), which
 * any operator token can send as many of as it likes.
 */
async function adminActions(knex: Knex, node: NodeRow, viewerTenant: string | undefined): Promise<TimelineEntry[]> {
  const policyNames = [...new Set([node.runtimePolicy, node.mbPolicy].filter((name): name is string => name !== null))];
  const onNode = (successful: boolean): Knex.QueryBuilder =>
    knex('audit_records')
      .select('at', 'actor', 'action', 'details')
      .where({ stream: node.agentId })
      .whereNot('action', 'verdict')
      .whereRaw(successful ? SUCCESSFUL_CHANGE_SQL : `not (${SUCCESSFUL_CHANGE_SQL})`)
      .where((by) => void byCertificateOrTenant(by, node.tenant))
      .orderBy('at', 'desc')
      .limit(successful ? HISTORY_ROWS_SHOWN : REFUSALS_SHOWN);
  const onPolicies = (successful: boolean): Promise<AuditRow[]> => (policyNames.length === 0 ? Promise.resolve([]) : policyActions(knex, policyNames, viewerTenant, successful));
  const sources = (await Promise.all([onNode(true), onNode(false), onPolicies(true), onPolicies(false)])) as AuditRow[][];
  const actions = sources.flat().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  return actions.map((action) => ({ at: action.at, kind: 'admin', title: `${action.action} by ${action.actor}`, eventIds: [], detail: action.details, count: 1, leftOut: false }));
}

interface AuditRow {
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly details: string;
}

/**
 * The newest `fleet` records naming each of `names` (`FLEET_RECORDS_READ` each), successful changes
 * or refused requests, those `viewerTenant` may see, newest first: `HISTORY_ROWS_SHOWN` changes or
 * `REFUSALS_SHOWN` refusals.
 */
async function policyActions(knex: Knex, names: readonly string[], viewerTenant: string | undefined, successful: boolean): Promise<AuditRow[]> {
  const newest = names.map((name) =>
    knex('audit_records')
      .select('at', 'actor', 'action', 'details')
      .where({ stream: FLEET_STREAM })
      .whereRaw(`${FLEET_POLICY_NAME_SQL} = ?`, [name])
      .whereRaw(successful ? SUCCESSFUL_CHANGE_SQL : `not (${SUCCESSFUL_CHANGE_SQL})`)
      .orderBy('at', 'desc')
      .limit(FLEET_RECORDS_READ),
  );
  const [first, ...rest] = newest;
  const candidates = (rest.length === 0 ? (first as Knex.QueryBuilder) : knex.unionAll([first as Knex.QueryBuilder, ...rest], true)).as('f');
  const visible = knex.from(candidates).select('at', 'actor', 'action', 'details');
  if (viewerTenant !== undefined) void visible.where((by) => void byCertificateOrTenant(by, viewerTenant));
  return (await visible.orderBy('at', 'desc').limit(successful ? HISTORY_ROWS_SHOWN : REFUSALS_SHOWN)) as AuditRow[];
}

/**
 * Records made with a client certificate or with a token of `tenant`: `details.tenant`, or, in a
 * record written before that field, the actor's ending ` (<role>@<tenant>)` (`principalName`; the
 * subject comes before it, so it cannot forge the ending).
 */
function byCertificateOrTenant(where: Knex.QueryBuilder, tenant: string): Knex.QueryBuilder {
  return where
    .where('actor', 'like', 'cert:%')
    .orWhereRaw(`(${DETAILS_JSONB} ->> 'tenant') = ?`, [tenant])
    .orWhere((old) => {
      void old.whereRaw(`(${DETAILS_JSONB} ->> 'tenant') is null`).where((ending) => {
        for (const suffix of ROLES.map((role) => ` (${role}@${tenant})`)) {
          void ending.orWhereRaw('right(actor, ?) = ?', [suffix.length, suffix]);
        }
      });
    });
}

/** A liveness-checked node's status changes (`verifier_liveness_events`) under its tenant, with the engine's reason. */
async function livenessChanges(knex: Knex, node: NodeRow): Promise<TimelineEntry[]> {
  const rows = (await knex('verifier_liveness_events')
    .select('at', 'from_status', 'to_status', 'reason')
    .where({ agent_id: node.agentId, tenant: node.tenant })
    .orderBy('id', 'desc')
    .limit(HISTORY_ROWS_SHOWN)) as { at: Date | string; from_status: string; to_status: string; reason: string | null }[];
  return rows.map((row) => ({
    at: new Date(row.at).toISOString(),
    kind: 'state',
    title: `${livenessStatusWord(storedLivenessStatus(row.from_status))} → ${livenessStatusWord(storedLivenessStatus(row.to_status))}`,
    eventIds: [],
    // A reason is one line: a line feed in the answer it quotes would start a line of the node's choosing.
    detail: visibleLine(row.reason ?? ''),
    count: 1,
    leftOut: false,
  }));
}
