import type { Principal } from '../auth/roles.js';
import { principalName } from '../auth/roles.js';
import { html, type SafeHtml } from './html.js';
import { isolatedLine } from './isolated-text.js';

export type DashboardTab = 'overview' | 'nodes' | 'policies' | 'login';

/** The page frame: navigation, who is logged in, the stylesheet and the live-update script. */
export function layout(title: string, tab: DashboardTab, principal: Principal | undefined, body: SafeHtml): string {
  const link = (href: string, name: DashboardTab, text: string): SafeHtml =>
    html`<a href="${href}"${name === tab ? html` aria-current="page"` : ''}>${text}</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ironlime</title>
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
<script src="/dashboard/static/dashboard.js" defer></script>
</head>
<body>
<header>
<strong>ironlime</strong>
<nav>${link('/dashboard', 'overview', 'Overview')} ${link('/dashboard/nodes', 'nodes', 'Nodes')} ${link('/dashboard/policies', 'policies', 'Policies')}</nav>
${
  principal === undefined
    ? ''
    : html`<form method="post" action="/dashboard/logout" class="who"><span>${isolatedLine(principalName(principal))}</span> <button type="submit">Log out</button></form>`
}
</header>
<main>
<h1>${title}</h1>
${body}
</main>
<!-- Filled by the live updates on every page: a node failing off this page's rows still shows here. -->
<footer><span id="live" data-state="off">live updates off (reload to refresh)</span> <span id="fleet-failing" hidden>· failing in the fleet: <span data-count="failing">0</span><span id="new-failures"></span></span></footer>
</body>
</html>
`.text;
}
