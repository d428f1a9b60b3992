import { LIVENESS_MODES, LIVENESS_STATUSES } from '../attestation/liveness-decision.js';
import { OPERATIONAL_STATE_LABELS } from '../attestation/operational-state.js';
import type { Principal } from '../auth/roles.js';
import type { FleetOverview, NodePage, NodeQuery, NodeSort, PolicyPage } from './dashboard-queries.js';
import { SHOWN_TRUST_LEVELS, type NodeRow } from './node-row.js';
import { DETAIL_CHARS_SHOWN, HISTORY_ROWS_SHOWN, REFUSALS_SHOWN, ROUNDS_DETAILED, type TimelineEntry } from './node-timeline.js';
import { html, type SafeHtml } from './html.js';
import { layout } from './layout.js';
import { isolatedLine, isolatedText } from './isolated-text.js';

/** CSS class of a tone (pass, fail, pending, live): the colour of a node everywhere on the dashboard. */
export function statusClass(tone: string): string {
  return `status-${tone}`;
}

export function overviewPage(principal: Principal | undefined, overview: FleetOverview): string {
  const stat = (key: string, label: string, value: number, cls = ''): SafeHtml =>
    html`<div class="stat ${cls}"><span class="value" data-count="${key}">${value}</span><span class="label">${label}</span></div>`;
  return layout(
    'Fleet overview',
    'overview',
    principal,
    html`<section class="stats">
${stat('total', 'agents attested with a TPM', overview.total)}
${stat('PASS', 'passing', overview.byStatus.PASS, 'status-pass')}
${stat('FAIL', 'failed', overview.byStatus.FAIL, 'status-fail')}
${stat('PENDING', 'pending', overview.byStatus.PENDING, 'status-pending')}
${stat('stale', 'of which a stale PASS', overview.stalePasses, 'status-pending')}
${stat('perMinute', 'attestations in the last minute', overview.attestationsLastMinute)}
${stat('failuresHour', 'failures in the last hour', overview.failuresLastHour)}
${stat('late', 'late rounds', overview.lateRounds)}
</section>
<h2>Agents by state</h2>
<!-- Every state has a row, so live updates can fill any of them. -->
<table class="states"><thead><tr><th>state</th><th>agents</th></tr></thead><tbody>
${Object.entries(OPERATIONAL_STATE_LABELS).map(([state, label]) => {
  const count = overview.byState.find((row) => String(row.state) === state)?.count ?? 0;
  return html`<tr><td>${label} (${state})</td><td data-count="state-${state}">${count}</td></tr>`;
})}
</tbody></table>
<h2>Agents attested with a TPM, by trust level</h2>
<!-- As the registrar gave it at enrolment (the keylime driver's metadata); unknown: the enrolment carried none. -->
<p class="note">The level their enrolment claims, which no quote checks: a quote does not show whether a TPM is hardware or emulated.</p>
<table class="trust-levels"><thead><tr><th>trust level</th><th>agents</th></tr></thead><tbody>
${SHOWN_TRUST_LEVELS.map((level) => html`<tr><td>${level === 'unknown' ? level : `${level} (claimed)`}</td><td data-count="trust-${level}">${overview.byClaimedTrustLevel[level]}</td></tr>`)}
</tbody></table>
<h2>Nodes without a TPM: liveness checks only</h2>
<p class="note">These nodes are checked for liveness and have no integrity evidence: no quote, IMA or measured boot. They are never counted as passing. Their trust level is their mode, which every check's answer must match: id-secret nodes prove the host secret, id-only nodes only answer with their id.</p>
<table class="liveness"><thead><tr><th>liveness</th>${LIVENESS_MODES.map((mode) => html`<th>${mode}</th>`)}</tr></thead><tbody>
${LIVENESS_STATUSES.map(
  (status) =>
    html`<tr><td>${status}, no integrity evidence</td>${LIVENESS_MODES.map((mode) => html`<td data-count="liveness-${mode}-${status}">${overview.byLiveness[mode][status]}</td>`)}</tr>`,
)}
</tbody></table>`,
  );
}

const COLUMNS: ReadonlyArray<{ readonly sort: NodeSort; readonly title: string }> = [
  { sort: 'id', title: 'agent' },
  { sort: 'state', title: 'state' },
  { sort: 'trust', title: 'trust level' },
  { sort: 'attestations', title: 'attestations' },
  { sort: 'success', title: 'last success' },
  { sort: 'event', title: 'last event id' },
];

function nodesHref(query: NodeQuery, change: Partial<NodeQuery>): string {
  const next = { ...query, ...change };
  const params = new URLSearchParams();
  if (next.search !== '') params.set('q', next.search);
  params.set('sort', next.sort);
  params.set('dir', next.descending ? 'desc' : 'asc');
  params.set('page', String(next.page));
  return `/dashboard/nodes?${params.toString()}`;
}

export function nodeRowHtml(row: NodeRow): SafeHtml {
  return html`<tr data-agent="${row.agentId}" class="${statusClass(row.tone)}">
<td><a href="/dashboard/nodes/${encodeURIComponent(row.agentId)}">${row.agentId}</a></td>
<td data-field="state">${row.tableState}</td>
<td data-field="trust">${row.trustShown}</td>
<td data-field="attestations">${row.attestationCount}</td>
<td data-field="success">${row.lastSuccess ?? '—'}</td>
<td data-field="event">${row.lastEventId ?? ''}</td>
</tr>`;
}

export function nodesPage(principal: Principal | undefined, query: NodeQuery, page: NodePage): string {
  const header = COLUMNS.map(({ sort, title }) => {
    const active = query.sort === sort;
    const descending = active ? !query.descending : false;
    const arrow = active ? (query.descending ? ' ▼' : ' ▲') : '';
    return html`<th><a href="${nodesHref(query, { sort, descending, page: 1 })}">${title}${arrow}</a></th>`;
  });
  return layout(
    'Nodes',
    'nodes',
    principal,
    html`<form method="get" action="/dashboard/nodes" class="search">
<input type="search" name="q" value="${query.search}" placeholder="agent id, address or event id" aria-label="search">
<input type="hidden" name="sort" value="${query.sort}"><input type="hidden" name="dir" value="${query.descending ? 'desc' : 'asc'}">
<button type="submit">Search</button>
</form>
<p>${page.total} node(s), page ${page.page} of ${page.pages}</p>
<table class="nodes"><thead><tr>${header}</tr></thead><tbody>
${page.rows.map(nodeRowHtml)}
</tbody></table>
<nav class="pages">
${page.page > 1 ? html`<a href="${nodesHref(query, { page: page.page - 1 })}" rel="prev">← previous</a>` : ''}
${page.page < page.pages ? html`<a href="${nodesHref(query, { page: page.page + 1 })}" rel="next">next →</a>` : ''}
</nav>`,
  );
}

export function nodePage(principal: Principal | undefined, node: NodeRow, timeline: readonly TimelineEntry[]): string {
  return layout(
    `Node ${node.agentId}`,
    'nodes',
    principal,
    html`<dl class="node ${statusClass(node.tone)}" data-agent="${node.agentId}">
<dt>status</dt><dd data-field="status">${node.status}</dd>
<dt>state</dt><dd data-field="state">${node.state === null ? node.label : `${node.label} (${node.state})`}</dd>
<dt>trust level</dt><dd data-field="trust">${node.trustShown}</dd>
${
  node.integrityEvidence === null
    ? ''
    : html`<dt>integrity evidence</dt><dd data-field="integrity">${node.integrityEvidence}</dd>
<dt>last seen</dt><dd data-field="seen">${node.lastSeen ?? '—'}</dd>
<dt>last failure</dt><dd data-field="failure">${isolatedLine(node.lastFailure ?? '—')}</dd>`
}
<dt>last event id</dt><dd data-field="event">${node.lastEventId ?? '—'}</dd>
<dt>attestations</dt><dd data-field="attestations">${node.attestationCount}</dd>
<dt>last success</dt><dd data-field="success">${node.lastSuccess ?? '—'}</dd>
<dt>tenant</dt><dd>${isolatedLine(node.tenant)}</dd>
<dt>address</dt><dd>${node.ip ?? '—'}:${node.port ?? '—'}</dd>
<dt>runtime policy</dt><dd>${isolatedLine(node.runtimePolicy ?? '—')}</dd>
<dt>measured boot policy</dt><dd>${isolatedLine(node.mbPolicy ?? '—')}</dd>
</dl>
<h2>Attestation timeline</h2>
${timelineNote(timeline)}
<ol class="timeline">
${timeline.map(
  (entry) => html`<li class="entry-${entry.kind}"><time>${entry.at}</time> <strong>${isolatedLine(entry.title)}</strong>
${entry.leftOut ? html` <span class="note">(event ids and context not shown)</span>` : ''}
${entry.eventIds.map((id) => html` <code class="event-id">${id}</code>`)}
${entry.detail === '' ? '' : html`<details><summary>context</summary><pre>${isolatedText(entry.detail)}</pre></details>`}</li>`,
)}
</ol>`,
  );
}

/** What the timeline leaves out (`readNodeTimeline`), said above it. */
function timelineNote(timeline: readonly TimelineEntry[]): SafeHtml {
  const leftOut = timeline.filter((entry) => entry.leftOut).length;
  return html`<p class="note">Newest first: the last ${HISTORY_ROWS_SHOWN} rounds, liveness changes and successful admin actions (of the node and of its policies each), and the last ${REFUSALS_SHOWN} refused requests of each; event ids and contexts of the newest entries, up to ${DETAIL_CHARS_SHOWN.toLocaleString('en-US')} characters and ${ROUNDS_DETAILED} rounds with failures in all${
    leftOut === 0 ? '' : `: contexts and event ids of ${leftOut} older entries are not shown`
  }. The whole history is in the verifier's database (verifier_attestation_history) and its audit log (ironlime audit export).</p>`;
}

export function policiesPage(principal: Principal | undefined, policies: PolicyPage): string {
  const href = (page: number): string => `/dashboard/policies?page=${page}`;
  return layout(
    'Policies in use',
    'policies',
    principal,
    html`<p>${policies.total} policies in use, page ${policies.page} of ${policies.pages}</p>
<table class="policies"><thead><tr><th>kind</th><th>name</th><th>agents</th><th>updated</th></tr></thead><tbody>
${policies.uses.map((p) => html`<tr><td>${p.kind}</td><td>${isolatedLine(p.name)}</td><td>${p.agents}</td><td>${p.updatedAt}</td></tr>`)}
</tbody></table>
${policies.total === 0 ? html`<p>No policy is used by an agent you can see.</p>` : ''}
<nav class="pages">
${policies.page > 1 ? html`<a href="${href(policies.page - 1)}" rel="prev">← previous</a>` : ''}
${policies.page < policies.pages ? html`<a href="${href(policies.page + 1)}" rel="next">next →</a>` : ''}
</nav>`,
  );
}

export function loginPage(message: string | undefined): string {
  return layout(
    'Log in',
    'login',
    undefined,
    html`<p>Paste a token from <code>ironlime token issue --role viewer --tenant T</code> (or use the verifier's client certificate).</p>
${message === undefined ? '' : html`<p class="error" role="alert">${message}</p>`}
<form method="post" action="/dashboard/login" class="login">
<textarea name="token" rows="6" cols="70" required aria-label="token"></textarea>
<button type="submit">Log in</button>
</form>`,
  );
}

export function errorPage(principal: Principal | undefined, title: string, message: string): string {
  return layout(title, 'overview', principal, html`<p class="error">${message}</p>`);
}
