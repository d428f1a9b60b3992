import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { visibleText } from '../../lib/dashboard/visible-text.js';
import { dashboardPerSuite } from './dashboard-viewer.js';
import { insertFailedRound, storeNodeAnsweringAs } from './node-history.js';

const RLO = '\u202e';
/** A file a tampered node ran: its name holds U+202E, so it reads as `/usr/bin/rootkit.sh` backwards… */
const HOSTILE_PATH = `/tmp/${RLO}hs.tikt${'\u200b'}oor`;
/** …and a node without a TPM that answers with another agent's id holding the isolates and a line separator. */
const HOSTILE_ID = `\u2066other\u2069\u2028\u{e0001}`;
/**
 * Default-ignorable characters that are not format characters, each drawn by Chromium with no width
 * (or as a blank): after `/usr/bin/ssh` a variation selector, the combining grapheme joiner, a
 * Mongolian free variation selector, a supplementary variation selector and a Hangul filler.
 */
const IGNORABLE_PATH = '/usr/bin/ssh\ufe00\u034f\u180b\u{e0100}\u3164';
/**
 * A path of 4,000 supplementary variation selectors: under the 4,096 characters a context is cut at,
 * and twelve times as long once each is shown as its two `\uXXXX` escapes.
 */
const PADDED_PATH = `/tmp/${'\u{e0100}'.repeat(4000)}`;
/** Every invisible character the page must not carry raw. */
const INVISIBLE = /[\u202a-\u202e\u2066-\u2069\u200b\u2028\u{e0001}\ufe00\u034f\u180b\u{e0100}\u3164]/u;

/**
 * Failure contexts and liveness reasons quote what a node sent: the path of a file it ran, a field of
 * its answer. Shown as they were, a right-to-left override in a file's name made the failing path
 * read as another one on the node page (and zero-width or line-separator characters hid or moved text).
 * They are shown as `\uXXXX` escapes: in the context's JSON that is the same value.
 */
describe('dashboard: invisible characters a node sent are shown as escapes, not applied', function () {
  this.timeout(60_000);
  const dashboard = dashboardPerSuite('ironlime-dashboard-invisible-');

  before(async function () {
    const knex = dashboard.suite.database.database.knex;
    // agent-000001 and agent-000003 are tenant `default`.
    await seedVerifierAgents(knex, 3, 0);
    await insertFailedRound(knex, 'agent-000001', [
      { event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { message: `File not found in allowlist: ${HOSTILE_PATH}` } },
      { event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { message: `File not found in allowlist: ${IGNORABLE_PATH}` } },
    ]);
    await insertFailedRound(knex, 'agent-000003', Array.from({ length: 20 }, () => ({ event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { path: PADDED_PATH } })));
    const failed = await storeNodeAnsweringAs(knex, 'live-1', 'default', HOSTILE_ID);
    expect(failed.lastFailure).to.include(HOSTILE_ID);
  });

  async function page(url: string): Promise<string> {
    const reply = await dashboard.get(url);
    expect(reply.status, reply.body).to.equal(200);
    return reply.body;
  }

  it("an IMA path's override and zero-width space in the timeline's failure context", async function () {
    const body = await page('/dashboard/nodes/agent-000001');
    expect(body).to.not.match(INVISIBLE);
    expect(body).to.include('File not found in allowlist: /tmp/\\u202ehs.tikt\\u200boor');
  });

  it('default-ignorable characters that are not format characters (variation selectors, fillers) in a failure context', async function () {
    const body = await page('/dashboard/nodes/agent-000001');
    expect(body).to.not.match(INVISIBLE);
    expect(body).to.include('File not found in allowlist: /usr/bin/ssh\\ufe00\\u034f\\u180b\\udb40\\udd00\\u3164');
  });

  it('a round whose contexts are all escapes: each is cut at 4,096 characters as shown, and the page stays small', async function () {
    const body = await page('/dashboard/nodes/agent-000003');
    expect(body).to.not.match(INVISIBLE);
    expect(body.length, 'the node page').to.be.below(256 * 1024);
    // Cut as the contexts over 4,096 characters are: the JSON text of the context, its escapes written as text.
    expect(body.replaceAll('&quot;', '"')).to.include('"truncated": "{\\"path\\": \\"/tmp/\\\\udb40\\\\udd00');
  });

  it("a liveness answer's isolates and line separator in the node's last failure and its timeline", async function () {
    const body = await page('/dashboard/nodes/live-1');
    expect(body).to.not.match(INVISIBLE);
    const shown = 'names another agent (\\u2066other\\u2069\\u2028\\udb40\\udc01)';
    expect(body.match(new RegExp(shown.replace(/[\\()]/g, '\\$&'), 'g')) ?? [], body).to.have.length(2);
  });

  it('keeps JSON text JSON of the same value, and line feeds as they are', function () {
    const value = { path: HOSTILE_PATH, id: HOSTILE_ID, ignorable: IGNORABLE_PATH, tab: '\t', nul: '\u0000', emoji: '\u{1f600}', text: 'Łódź, 東京, Αθήνα' };
    const json = JSON.stringify(value, null, 1);
    expect(visibleText(json)).to.not.match(INVISIBLE);
    expect(JSON.parse(visibleText(json))).to.deep.equal(value);
    expect(visibleText('a\nb\u0085c')).to.equal('a\nb\\u0085c');
    // Valid pairs and ordinary letters are kept: only lone surrogates are escaped.
    expect(visibleText('\u{1f600} Łódź 東京 \ud800')).to.equal('\u{1f600} Łódź 東京 \\ud800');
  });
});
