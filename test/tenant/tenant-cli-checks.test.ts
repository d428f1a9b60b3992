import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';
import { runCli } from '../helpers/cli-runner.js';
import { vectorText } from '../ima/ima-vectors.js';

const STATUS_TEXT: Record<number, string> = { 202: 'Accepted', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/**
 * `ironlime tenant` against a stand-in HTTPS verifier (its certificate from the data directory's CA,
 * so the CLI's own TLS setup is used): the status exit code and the numeric options.
 */
describe('ironlime tenant: status exit code and numeric options', function () {
  let dir: string;
  let server: Server;
  let url: string;
  let requests: string[];
  /** The verifier's `results` for `GET /v2.1/agents/a1`. */
  let agent: Record<string, unknown>;
  /** The verifier's `results` for `GET /v2.1/agents`. */
  let listed: Record<string, unknown>;
  /** Replies given instead, in turn, per `METHOD /path` (the last one again once the others are used): status, results, headers. */
  let scripted: Map<string, [number, Record<string, unknown>, Record<string, string>][]>;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-tenant-cli-'));
    const tls = await loadOrCreateServiceTls({ dataDir: dir, serviceName: 'verifier' });
    server = createServer({ cert: tls.cert, key: tls.key, ca: tls.ca }, (request, response) => {
      const key = `${request.method} ${(request.url ?? '').split('?')[0]}`;
      requests.push(`${request.method} ${request.url}`);
      request.resume();
      const turns = scripted.get(key);
      if (turns !== undefined) {
        const [status, results, headers] = turns.length > 1 ? (turns.shift() as (typeof turns)[number]) : (turns[0] as (typeof turns)[number]);
        response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ code: status, status: STATUS_TEXT[status] ?? 'x', results }));
        return;
      }
      const routes: Record<string, unknown> = { 'GET /v2.1/agents/a1': agent, 'GET /v2.1/agents/a1/history': { history: [] }, 'GET /v2.1/agents': listed };
      const [status, results] = key in routes ? [200, routes[key]] : [404, {}];
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code: status, status: 'x', results }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(function () {
    requests = [];
    scripted = new Map();
    listed = { uuids: [] };
    agent = { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: Math.floor(Date.now() / 1000) };
  });

  const tenant = (...args: string[]) => runCli(['tenant', ...args, '--uuid', 'a1', '--verifier', url, '--data-dir', dir]);

  /** Unix seconds now, as the verifier would stamp a success just made. */
  const now = (): number => Math.floor(Date.now() / 1000);

  it('status exits 0 only for a fresh PASS after a success, 1 for every failed agent the driver refuses, 3 for anything not proven', async function () {
    const cases: [string, Record<string, unknown>, number][] = [
      ['fresh PASS', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() }, 0],
      ['Keylime before 2.5 (no attestation_status)', { operational_state: 3, attestation_count: 3, last_successful_attestation: now() }, 0],
      ['failed', { operational_state: 7, attestation_count: 3 }, 1],
      ['invalid quote', { operational_state: 9, attestation_count: 3, last_event_id: 'ima.validation.ima-ng.not_in_allowlist' }, 1],
      ['stopped', { operational_state: 10, attestation_count: 3 }, 1],
      ['terminated', { operational_state: 8, attestation_count: 3 }, 1],
      ['TIMEOUT', { operational_state: 3, attestation_count: 3, attestation_status: 'TIMEOUT', last_successful_attestation: now() }, 1],
      ['FAIL', { operational_state: 3, attestation_count: 3, attestation_status: 'FAIL', last_successful_attestation: now() }, 1],
      ['PASS of a day ago (stale)', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() - 86_400 }, 3],
      ['PASS without last_successful_attestation', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS' }, 3],
      ['PASS dated in the future', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() + 3600 }, 3],
      ['retrying a silent agent', { operational_state: 4, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() }, 3],
      ['never quoted', { operational_state: 3, attestation_count: 0, attestation_status: 'PASS', last_successful_attestation: now() }, 3],
      ['unknown attestation_status', { operational_state: 3, attestation_count: 3, attestation_status: 'ERROR', last_successful_attestation: now() }, 3],
      ['start', { operational_state: 1, attestation_count: 0, attestation_status: 'PENDING' }, 3],
      ['ironlime says not trusted', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now(), trusted: false, freshness_bound: 70 }, 3],
    ];
    for (const [what, results, code] of cases) {
      agent = results;
      const run = await tenant('status');
      expect([run.code, run.stderr], what).to.deep.equal([code, '']);
      expect(JSON.parse(run.stdout).verdict, what).to.equal(code === 0 ? 'pass' : code === 1 ? 'fail' : 'pending');
    }
  });

  it('status --stale-after judges a Keylime verifier that sends no attestation_period by the operator\'s bound: an agent quoted every 120 s passes between its rounds', async function () {
    // Keylime before API 2.5: no attestation_status, no attestation_period; the last round 100 s ago.
    agent = { operational_state: 3, attestation_count: 3, last_successful_attestation: now() - 100 };
    expect((await tenant('status')).code).to.equal(3);
    const run = await tenant('status', '--stale-after', '300');
    expect([run.code, JSON.parse(run.stdout).verdict]).to.deep.equal([0, 'pass']);
    expect((await tenant('status', '--stale-after', '60')).code).to.equal(3);
    const bad = await tenant('status', '--stale-after', '0');
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^error: option '--stale-after <seconds>' argument '0' is invalid\. must be an integer from 1 to 86400\n/);
  });

  it('status of a push-mode verifier reply without operational_state: its attestation_status decides, and none is not a pass (exit 3), not a crash', async function () {
    const cases: [Record<string, unknown>, number][] = [
      [{ attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() }, 0],
      [{ operational_state: null, attestation_count: 0, attestation_status: 'PENDING' }, 3],
      [{ operational_state: null, attestation_count: 3, attestation_status: 'FAIL' }, 1],
      [{ attestation_count: 3, attestation_status: 'TIMEOUT' }, 1],
      [{ attestation_count: 3 }, 3],
      [{ operational_state: null, attestation_status: 'SOMETHING_NEW' }, 3],
    ];
    for (const [results, code] of cases) {
      agent = results;
      const run = await tenant('status');
      expect([run.code, run.stderr], JSON.stringify(results)).to.deep.equal([code, '']);
      expect(JSON.parse(run.stdout).operational_state_label, JSON.stringify(results)).to.equal('none (push mode: see attestation_status)');
    }
  });

  it('status refuses a wrongly typed field or another agent\'s reply as a bad reply (exit 2), never as a verdict', async function () {
    for (const results of [
      { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now(), trusted: 'true' },
      { operational_state: 3, attestation_count: '3', attestation_status: 'PASS', last_successful_attestation: now() },
      { agent_id: 'other', operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() },
    ]) {
      agent = results;
      const run = await tenant('status');
      expect([run.code, run.stdout], JSON.stringify(results)).to.deep.equal([2, '']);
      expect(run.stderr, JSON.stringify(results)).to.match(/^ironlime: verifier status of agent a1: bad reply: .*not trusted\n$/);
    }
  });

  it('status takes a reply as the driver takes it: one check, no second refusal of what the verdict read', async function () {
    const cases: [string, Record<string, unknown>, number, string][] = [
      // A state code Keylime does not define: the driver waits on it (3), it is no bad reply.
      ['unknown state', { operational_state: 11, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() }, 3, 'unknown state 11'],
      // Unix seconds with a fraction, and attestation_period as a number: both read by the verdict.
      ['fractional last success', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now() - 0.5 }, 0, 'Get Quote'],
      ['numeric attestation_period', { operational_state: 3, attestation_count: 3, attestation_status: 'PASS', last_successful_attestation: now(), attestation_period: 2 }, 0, 'Get Quote'],
    ];
    for (const [what, results, code, label] of cases) {
      agent = results;
      const run = await tenant('status');
      expect([run.code, run.stderr], what).to.deep.equal([code, '']);
      expect(JSON.parse(run.stdout).operational_state_label, what).to.equal(label);
    }
    // A negative severity_level is refused by the one check, as by the driver.
    agent = { operational_state: 9, attestation_count: 3, severity_level: -1 };
    const run = await tenant('status');
    expect([run.code, run.stdout]).to.deep.equal([2, '']);
    expect(run.stderr).to.match(/bad reply: .*severity_level/);
  });

  it('says when to retry when the verifier answers 429 or 503 with Retry-After', async function () {
    scripted.set('GET /v2.1/agents/a1', [[503, {}, { 'retry-after': '30' }]]);
    const busy = await tenant('status');
    expect([busy.code, busy.stdout]).to.deep.equal([2, '']);
    expect(busy.stderr).to.match(/\/v2\.1\/agents\/a1: 503 Service Unavailable \(the service asks to retry in 30 s\)\n$/);
    const at = 'Mon, 07 Dec 2026 03:00:00 GMT';
    scripted.set('GET /v2.1/agents/a1', [[429, {}, { 'retry-after': at }]]);
    expect((await tenant('status')).stderr).to.match(new RegExp(`: 429 Too Many Requests \\(the service asks to retry after ${at}\\)\\n$`));
    // A value that is neither seconds nor a date is not repeated.
    scripted.set('GET /v2.1/agents/a1', [[503, {}, { 'retry-after': 'soon' }]]);
    expect((await tenant('status')).stderr).to.match(/: 503 Service Unavailable\n$/);
  });

  it('delete waits through a 5xx while the agent is being removed, and its timeout says the removal was accepted', async function () {
    scripted.set('DELETE /v2.1/agents/a1', [[202, {}, {}]]);
    scripted.set('GET /v2.1/agents/a1', [[500, {}, {}], [503, {}, { 'retry-after': '1' }], [404, {}, {}]]);
    const gone = await tenant('delete', '--timeout', '30');
    expect([gone.code, gone.stdout, gone.stderr]).to.deep.equal([0, 'deleted agent a1 from the verifier\n', '']);
    scripted.set('GET /v2.1/agents/a1', [[500, {}, {}]]);
    const stuck = await tenant('delete', '--timeout', '1');
    expect([stuck.code, stuck.stdout]).to.deep.equal([2, '']);
    expect(stuck.stderr).to.match(
      /^ironlime: the verifier accepted the removal of agent a1, but the tenant did not see it gone: agent a1 still present at the verifier after 1000 ms; its last status read answered https:\/\/127\.0\.0\.1:\d+\/v2\.1\/agents\/a1: 500 Internal Server Error\n$/,
    );
    // Anything else ends the wait at once, saying the same.
    scripted.set('GET /v2.1/agents/a1', [[403, {}, {}]]);
    const refused = await tenant('delete', '--timeout', '30');
    expect(refused.stderr).to.match(/^ironlime: the verifier accepted the removal of agent a1, but the tenant did not see it gone: https:\/\/\S+: 403 x\n$/);
  });

  it('list prints ids given as strings or as Keylime\'s one-element rows, and refuses any other entry (exit 2) instead of printing "null" or "undefined"', async function () {
    const list = () => runCli(['tenant', 'list', '--verifier', url, '--data-dir', dir]);
    listed = { uuids: ['a1', ['a2']] };
    const good = await list();
    expect([good.code, JSON.parse(good.stdout)]).to.deep.equal([0, { uuids: ['a1', 'a2'] }]);
    for (const uuids of [[null], [[]], [{}], [['a1', 'a2']], [[1]], [7]]) {
      listed = { uuids };
      const run = await list();
      expect([run.code, run.stdout], JSON.stringify(uuids)).to.deep.equal([2, '']);
      expect(run.stderr, JSON.stringify(uuids)).to.contain('bad reply: results.uuids: must list agent ids');
    }
  });

  for (const [command, option, bad, range] of [
    ['delete', '--timeout', 'abc', '1 to 86400'],
    ['delete', '--timeout', '0', '1 to 86400'],
    ['history', '--limit', 'abc', '1 to 1000'],
    ['history', '--limit', '1001', '1 to 1000'],
  ] as const) {
    it(`${command} refuses ${option} ${bad} before any request`, async function () {
      const run = await tenant(command, option, bad);
      expect(run.code).to.not.equal(0);
      expect(run.stderr).to.contain(`option '${option} <${option === '--timeout' ? 'seconds' : 'n'}>' argument '${bad}' is invalid. must be an integer from ${range}`);
      expect(requests).to.deep.equal([]);
    });
  }

  it('history sends the --limit it was given, and 20 by default', async function () {
    expect((await tenant('history', '--limit', '5')).code).to.equal(0);
    expect((await tenant('history')).code).to.equal(0);
    expect(requests.filter((request) => request !== 'GET /version')).to.deep.equal(['GET /v2.1/agents/a1/history?limit=5', 'GET /v2.1/agents/a1/history?limit=20']);
  });

  it('history follows next_before up to --limit, sends --before, and a reply without next_before is the last page (Keylime)', async function () {
    const rows = (...ids: number[]) => ids.map((id) => ({ id, outcome: 'pass' }));
    scripted.set('GET /v2.1/agents/a1/history', [[200, { history: rows(9, 8), next_before: 8 }, {}], [200, { history: rows(7) }, {}]]);
    const run = await tenant('history', '--limit', '5');
    expect(run.code, run.stderr).to.equal(0);
    expect((JSON.parse(run.stdout) as { history: { id: number }[] }).history.map((row) => row.id)).to.deep.equal([9, 8, 7]);
    expect((await tenant('history', '--before', '1234567890123')).code).to.equal(0);
    expect(requests.filter((request) => request !== 'GET /version')).to.deep.equal([
      'GET /v2.1/agents/a1/history?limit=5',
      'GET /v2.1/agents/a1/history?limit=3&before=8',
      'GET /v2.1/agents/a1/history?limit=20&before=1234567890123',
    ]);
  });

  for (const [what, page] of [
    ['an empty page', { history: [], next_before: 5 }],
    ['a page not moving back', { history: [{ id: 9, outcome: 'pass' }], next_before: 9 }],
    ['a next_before not a history id', { history: [{ id: 9, outcome: 'pass' }], next_before: '8' }],
  ] as const) {
    it(`history refuses a next_before on ${what} (exit 2) instead of following it for ever`, async function () {
      scripted.set('GET /v2.1/agents/a1/history', [[200, page, {}]]);
      const run = await tenant('history', '--limit', '1000');
      expect(run.code).to.equal(2);
      expect(run.stderr).to.contain('does not start an older page');
      expect(requests.filter((request) => request !== 'GET /version').length).to.be.at.most(2);
    });
  }

  it('history refuses a reply whose history is not a list (exit 2)', async function () {
    scripted.set('GET /v2.1/agents/a1/history', [[200, { history: { id: 9 } }, {}]]);
    const run = await tenant('history');
    expect(run.code).to.equal(2);
    expect(run.stderr).to.contain('history is not a list');
  });

  for (const bad of ['0', 'abc', '-1', '12345678901234567']) {
    it(`history refuses --before ${bad} before any request`, async function () {
      const run = await tenant('history', '--before', bad);
      expect(run.code).to.not.equal(0);
      expect(run.stderr).to.contain(`option '--before <id>' argument '${bad}' is invalid. must be a history id: a whole number from 1`);
      expect(requests).to.deep.equal([]);
    });
  }

  for (const [command, bad] of [
    ['status', ''],
    ['delete', '..'],
    ['history', 'a1/history'],
    ['registrar show', ''],
    ['registrar delete', '.'],
  ] as const) {
    it(`${command} refuses --uuid '${bad}' before any request`, async function () {
      const run = await runCli(['tenant', ...command.split(' '), '--uuid', bad, ...(command.startsWith('registrar') ? ['--registrar', url] : ['--verifier', url]), '--data-dir', dir]);
      expect(run.code).to.equal(2);
      expect(run.stderr).to.contain(`option '--uuid <id>' argument '${bad}' is invalid. must be an agent id: 1 to 80 letters, digits, "_", "." and "-", not only dots`);
      expect(requests).to.deep.equal([]);
    });
  }

  it('add --verify without a key to check (--deliver-keys or --payload) is refused before any request', async function () {
    const run = await tenant('add', '--verify');
    expect(run.code).to.equal(2);
    expect(run.stderr).to.equal('ironlime: --verify: checks the bootstrap key K: give --deliver-keys or --payload with it\n');
    expect(requests).to.deep.equal([]);
  });

  it('add names --payload when its file cannot be read, before any request', async function () {
    const missing = path.join(dir, 'no-such-payload');
    const run = await tenant('add', '--payload', missing);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.equal(`ironlime: --payload: cannot read ${missing}: ENOENT\n`);
    expect(requests).to.deep.equal([]);
  });

  it('add and allowlist add refuse a policy file over 100 MiB by its size, before reading it or any request', async function () {
    const huge = path.join(dir, 'huge-policy.json');
    // Sparse: no disk is written, and a read of it would still build a 101 MiB buffer.
    writeFileSync(huge, '');
    truncateSync(huge, 101 * 1024 * 1024);
    const message = (option: string): string => `ironlime: ${option}: ${huge} holds more than the ${100 * 1024 * 1024} bytes ${option} may name\n`;
    const add = await tenant('add', '--runtime-policy', huge);
    expect([add.code, add.stderr]).to.deep.equal([2, message('--runtime-policy')]);
    const store = await runCli(['tenant', 'allowlist', 'add', '--name', 'p', '--file', huge, '--verifier', url, '--data-dir', dir]);
    expect([store.code, store.stderr]).to.deep.equal([2, message('--file')]);
    expect(requests).to.deep.equal([]);
  });

  it('add --runtime-policy of a flat allowlist is refused as not JSON, naming --allowlist, before any request (it was read as one, "allowlist line 1")', async function () {
    const flat = path.join(dir, 'flat-allowlist.txt');
    writeFileSync(flat, `${'ab'.repeat(32)}  /usr/bin/true\n`);
    const run = await tenant('add', '--runtime-policy', flat);
    expect([run.code, run.stderr]).to.deep.equal([
      2,
      `ironlime: --runtime-policy: ${flat} is not JSON (a Keylime runtime policy, or a DSSE envelope of one); give a flat allowlist ("<digest> <path>" lines) with --allowlist\n`,
    ]);
    const notPolicy = path.join(dir, 'not-a-policy.txt');
    writeFileSync(notPolicy, 'hello\n');
    expect((await tenant('add', '--runtime-policy', notPolicy)).stderr).to.include(`--runtime-policy: ${notPolicy} is not JSON`);
    expect(requests).to.deep.equal([]);
  });

  it('add --mb-policy of something that is not a refstate (a runtime policy) names --mb-policy and the file, before any request', async function () {
    const policy = path.join(dir, 'runtime-policy.json');
    writeFileSync(policy, '{"digests": {}}');
    const run = await tenant('add', '--mb-policy', policy);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(new RegExp(`^ironlime: --mb-policy: ${policy.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: measured-boot refstate: .+\n$`));
    expect(requests).to.deep.equal([]);
  });

  it('add --allowlist names --allowlist when its file cannot be read', async function () {
    const missing = path.join(dir, 'no-such-allowlist');
    const run = await tenant('add', '--allowlist', missing);
    expect([run.code, run.stderr]).to.deep.equal([2, `ironlime: --allowlist: cannot read ${missing}: ENOENT\n`]);
    expect(requests).to.deep.equal([]);
  });

  it('allowlist add refuses --excludelist beside a signed policy, before any request (it answered "give the key" with the key given)', async function () {
    const signed = path.join(dir, 'signed.json');
    const key = path.join(dir, 'policy-key.pub');
    const excludes = path.join(dir, 'excludes.txt');
    writeFileSync(signed, vectorText('keylime', 'runtime_policy', 'runtime-policy-test-signed.json'));
    writeFileSync(key, vectorText('keylime', 'runtime_policy', 'runtime-policy-pubkey.pub'));
    writeFileSync(excludes, '^/tmp/.*\n');
    const run = await runCli(['tenant', 'allowlist', 'add', '--name', 'p', '--file', signed, '--signing-key', key, '--excludelist', excludes, '--verifier', url, '--data-dir', dir]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.equal('ironlime: --excludelist: cannot be added to a signed policy (--signing-key): put the excludes in the policy before it is signed\n');
    expect(requests).to.deep.equal([]);
  });

  it('broker refuses --token-lifetime abc with the option\'s range (it was NaN until the config check)', async function () {
    const run = await runCli(['broker', '--token-lifetime', 'abc', '--data-dir', dir]);
    expect(run.code).to.not.equal(0);
    expect(run.stderr).to.contain("option '--token-lifetime <seconds>' argument 'abc' is invalid. must be an integer from 10 to 3600");
  });
});
