import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { formatPcrMask } from '../../lib/attestation/tpm-policy.js';
import { createRuntimePolicy } from '../../lib/ima/create-runtime-policy.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { POLICY_VERSION_CHECK_MS } from '../../lib/verifier/policy-version-watch.js';
import { VERIFIER_KNEX } from '../../lib/verifier/verifier-tokens.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { vectorPath } from '../helpers/paths.js';
import { startFakePolledAgent, type FakePolledAgent } from './helpers/fake-polled-agent.js';
import { createTestSchema, eventually } from './helpers/verifier-fixture.js';

const AGENT = 'policy-other-process';
const b64 = (text: string): string => Buffer.from(text).toString('base64');
/** rust-keylime's test UEFI log: SHA-256 crypto-agile, PCRs 0-9 and 14, Secure Boot off. */
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_MASK = formatPcrMask([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14].reduce((mask, pcr) => mask | (1 << pcr), 0));
/**
 * The policy check (2 s) with slack for a loaded machine and for a CI host that stalls this process for
 * ~3 s: well under the 30 s lease A keeps.
 */
const CHECKED_MS = POLICY_VERSION_CHECK_MS + 5_000;

/**
 * Two verifier processes on one database: the agent is polled by A, its policy is changed through B.
 * A must judge by the new policy within the policy check's bound, as it does for a change made
 * through A itself, not keep the policy it compiled when it loaded the agent for as long as it holds
 * the lease. (What the agent measured before the change was judged by the old policy: entries are
 * checked once, so the revoked binary runs after the bound.)
 */
describe('Verifier (pull): a policy changed through another verifier process', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'pull-policy-other-'));
  let schema: Awaited<ReturnType<typeof createTestSchema>> | undefined;
  let agent: FakePolledAgent | undefined;
  let a: RunningVerifier | undefined;
  let b: RunningVerifier | undefined;
  /** Messages A logged. */
  let logged: string[] = [];

  async function stopAll(): Promise<void> {
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
    agent?.server.close();
    await schema?.drop();
    [a, b, agent, schema] = [undefined, undefined, undefined, undefined];
  }

  afterEach(stopAll);
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * Starts A; stores `refstate`, when given, through A as the measured-boot policy `boot`; enrols the
   * agent on A with `payload`'s policies and waits for its PASS; then starts B with the same settings
   * (after the agent passed on A, so A holds it: one agent, two processes, a share of one each).
   */
  async function enrolOnAThenStartB(payload: Record<string, unknown>, refstate?: string): Promise<void> {
    schema = await createTestSchema();
    // `always`: every round judges the boot log against the refstate (Keylime's default `once` judges the first only).
    const config = { databaseUrl: schema.url, quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 2, leaseSeconds: 30, measuredBootEvaluate: 'always' as const };
    logged = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(String((JSON.parse(line) as { msg: unknown }).msg)) });
    a = await startVerifier({ ...config, dataDir: mkdtempSync(path.join(dir, 'a-')) }, { inProcessForTests: true, logger });
    if (refstate !== undefined) {
      const added = await a.service.app.inject({ method: 'POST', url: '/v2.6/mbpolicies/boot', payload: { mb_policy: refstate } });
      expect(added.statusCode, added.body).to.equal(201);
    }
    const enrol = await a.service.app.inject({
      method: 'POST',
      url: `/v2.6/agents/${AGENT}`,
      payload: {
        v: null, cloudagent_ip: '127.0.0.1', cloudagent_port: agent!.port, accept_tpm_hash_algs: ['sha256'], accept_tpm_encryption_algs: ['rsa'],
        accept_tpm_signing_algs: ['rsassa'], ak_tpm: agent!.fake.akTpm, mtls_cert: agent!.certPem, ...payload,
      },
    });
    expect(enrol.statusCode, enrol.body).to.equal(200);
    await eventually('the agent passes on A', async () => (await statusOnA())['trusted'] === true);
    b = await startVerifier({ ...config, dataDir: mkdtempSync(path.join(dir, 'b-')) }, { inProcessForTests: true });
  }

  async function statusOnA(): Promise<Record<string, unknown>> {
    const reply = await a!.service.app.inject({ method: 'GET', url: `/v2.6/agents/${AGENT}` });
    return (JSON.parse(reply.body) as { results: Record<string, unknown> }).results;
  }

  async function putThroughB(url: string, payload: Record<string, unknown>): Promise<void> {
    const put = await b!.service.app.inject({ method: 'PUT', url, payload });
    expect(put.statusCode, put.body).to.be.within(200, 201);
  }

  /** A, which polls the agent throughout (every verdict is its), no longer trusts it within `withinMs`. */
  async function failsOnA(withinMs: number): Promise<void> {
    await eventually('A judges by the changed policy', async () => (await statusOnA())['trusted'] === false, withinMs);
    const owners = await a!.container.resolve(VERIFIER_KNEX)('verifier_attestation_history').distinct('owner').where({ agent_id: AGENT });
    expect(owners, 'every verdict is A\'s').to.deep.equal([{ owner: a!.owner }]);
  }

  const SEEN = 'stored policies changed: reloading the agents that use them';

  /**
   * Waits until A's policy check saw the change (at most `CHECKED_MS`, without failing: the verdict
   * is the test) and its reload (a row and two policy reads) had time to end: 1 s, plus 3 s for a CI
   * host that stalls this process meanwhile (no event says the reload ended).
   */
  async function reloadedOnA(): Promise<void> {
    const until = Date.now() + CHECKED_MS;
    while (!logged.includes(SEEN) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 4_000));
  }

  it('a digest removed from the runtime policy (enrolled inline, stored under the agent id) through B is refused by A', async function () {
    agent = await startFakePolledAgent();
    const oldLine = new FakeAgent().measure('/usr/bin/old', 'old version');
    const withOld = createRuntimePolicy({ imaListText: [...agent.fake.imaLines, oldLine].join('\n') }).policy;
    const withoutOld = createRuntimePolicy({ imaListText: agent.fake.imaLines.join('\n') }).policy;
    await enrolOnAThenStartB({ tpm_policy: '{"mask": "0x400"}', runtime_policy: b64(JSON.stringify(withOld)) });

    await putThroughB(`/v2.6/allowlists/${AGENT}`, { runtime_policy: b64(JSON.stringify(withoutOld)) });
    await reloadedOnA();
    agent.fake.measure('/usr/bin/old', 'old version');
    // Rounds every 0.3 s; with the old policy the revoked binary would pass for the whole 30 s lease.
    await failsOnA(CHECKED_MS);
  });

  it('a named measured-boot refstate changed through B is applied by A', async function () {
    agent = await startFakePolledAgent({ bootLog: BOOT_LOG });
    const refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
    await enrolOnAThenStartB({ tpm_policy: JSON.stringify({ mask: BOOT_MASK }), runtime_policy: '', mb_policy_name: 'boot' }, JSON.stringify(refstate));
    const wrongScrtm = refstate.scrtm_and_bios.map((entry) => ({ ...entry, scrtm: { sha256: `0x${'00'.repeat(32)}` } }));

    const changedAt = Date.now();
    await putThroughB('/v2.6/mbpolicies/boot', { mb_policy: JSON.stringify({ ...refstate, scrtm_and_bios: wrongScrtm }) });
    // Every round judges the whole boot log: the new refstate fails the next round after the reload.
    await failsOnA(CHECKED_MS + 1_000);
    expect(Date.now() - changedAt).to.be.below(CHECKED_MS + 1_000);
  });
});
