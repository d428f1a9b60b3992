import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { main } from '../../lib/cli/main.js';
import { startFleet, startPushFleet, type RunningFleet } from '../../lib/fleet/fleet.js';
import type { SimulatedPushAgent } from '../../lib/fleet/simulated-push-agent.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { showRegistrarAgent } from '../../lib/tenant/registrar-agents.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';

const NOT_IN_ALLOWLIST = 'ima.validation.ima-ng.not_in_allowlist';

/** Resolves true when something accepts TCP connections on `url`'s port. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('fleet simulator', function () {
  this.timeout(60_000);
  let admin: Knex;
  let schema: string;
  let dataDir: string;

  beforeEach(async function () {
    schema = `test_fleet_${randomBytes(6).toString('hex')}`;
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-fleet-test-'));
  });

  afterEach(async function () {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** `ironlime fleet --agents 2` plus `extra` on this test's schema, stdout captured. */
  async function runFleetCli(extra: readonly string[]): Promise<{ code: number; text: string }> {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
    try {
      // `options=-c search_path=…`: the CLI's in-process services work in this test's schema.
      const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
      const code = await main(['node', 'ironlime', 'fleet', '--agents', '2', '--data-dir', dataDir, '--database', url, '--quote-interval', '0.5', '--report', '0', '--log-level', 'silent', ...extra]);
      return { code, text: out.join('') };
    } finally {
      process.stdout.write = write;
    }
  }

  it('brings 5 agents to Get Quote, detects the tampered one with not_in_allowlist while the others stay good, and shuts everything down', async function () {
    let fleet: RunningFleet | undefined;
    try {
      fleet = await startFleet({
        agents: 5,
        dataDir,
        databaseUrl: TEST_DATABASE_URL,
        databaseSchema: schema,
        quoteInterval: 0.5,
        // Two known-good entries per second per agent: the logs grow during the test and must stay valid.
        imaEntriesPerMinute: 120,
      });
      expect(fleet.agents).to.have.length(5);
      expect(fleet.services?.verifier).to.not.equal(undefined);
      const ids = fleet.agents.map((agent) => agent.uuid);
      for (const id of ids) {
        const status = await fleet.tenant.waitForState(id, [OperationalState.GET_QUOTE], { timeoutMs: 20_000, intervalMs: 100 });
        expect(status.operational_state_label).to.equal('Get Quote');
        expect(status.has_runtime_policy).to.equal(1);
        expect(status.has_mb_refstate).to.equal(1);
      }
      const [victim, ...others] = fleet.agents;
      if (victim === undefined) {
        throw new Error('no agents');
      }
      await victim.tamper();
      const appendedAt = Date.now();
      const failed = await fleet.tenant.waitForState(victim.uuid, [OperationalState.INVALID_QUOTE, OperationalState.FAILED], { timeoutMs: 20_000, intervalMs: 50 });
      expect(failed.operational_state).to.equal(OperationalState.INVALID_QUOTE);
      expect(failed.last_event_id).to.equal(NOT_IN_ALLOWLIST);
      const history = await fleet.tenant.history(victim.uuid, 5);
      expect(history[0]?.failures.map((failure) => failure.event_id)).to.include(NOT_IN_ALLOWLIST);
      // Found by the first round that quoted after the tampering, counted in rounds, not seconds (a host that
      // stalls delays rounds, never adds any): at most the one round in flight at the append passed after it.
      expect(history.filter((row) => row.outcome === 'pass' && row.attemptedAt > appendedAt), 'passes decided after the tampering').to.have.length.at.most(1);

      // The others keep passing rounds over IMA logs that grew since they were enrolled.
      for (const agent of others) {
        const running = fleet;
        const logLines = (): string[] => readFileSync(agent.agent.imaLogPath as string, 'utf8').trim().split('\n');
        // Events, not fixed waits: a CI host that stalled this process (or the fleet's appender) for seconds
        // ended a fixed wait before the log grew or any round could run.
        await pollUntil({ timeoutMs: 20_000, intervalMs: 100 }, `the IMA log of ${agent.uuid} grew`, async () => logLines().length > 2);
        const before = await running.tenant.getStatus(agent.uuid);
        await pollUntil({ timeoutMs: 20_000, intervalMs: 100 }, `a round of ${agent.uuid} over its grown log`, async () => {
          const now = await running.tenant.getStatus(agent.uuid);
          return (now.attestation_count ?? 0) > (before.attestation_count ?? Infinity) || now.operational_state !== OperationalState.GET_QUOTE;
        });
        const status = await fleet.tenant.getStatus(agent.uuid);
        expect(status.operational_state, agent.uuid).to.equal(OperationalState.GET_QUOTE);
        expect(status.last_event_id).to.equal(null);
        expect(status.attestation_count).to.be.above(before.attestation_count ?? Infinity);
        const log = logLines();
        expect(log.slice(1).every((line) => line.includes('/usr/lib/ironlime-fleet/'))).to.equal(true);
      }
    } finally {
      await fleet?.close();
    }
    const agentUrls = fleet.agents.map((agent) => agent.agent.url);
    const serviceUrls = [fleet.verifierUrl, fleet.registrarUrl];
    for (const url of [...agentUrls, ...serviceUrls]) {
      expect(await listening(url), url).to.equal(false);
    }
    // Deregistered on close: nothing left for a later verifier on the same database to poll.
    expect(await admin.withSchema(schema).table('verifier_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(existsSync(path.join(dataDir, 'fleet', 'agents'))).to.equal(false);
  });

  it('with RSA AKs (--ak rsa): P-256 EKs, quotes signed with RSASSA, and the agents attest', async function () {
    let fleet: RunningFleet | undefined;
    try {
      fleet = await startFleet({ agents: 2, dataDir, databaseUrl: TEST_DATABASE_URL, databaseSchema: schema, quoteInterval: 0.5, akAlgorithm: 'rsa' });
      for (const agent of fleet.agents) {
        const status = await fleet.tenant.waitForState(agent.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 20_000, intervalMs: 100 });
        expect(status.sign_alg, agent.uuid).to.equal('rsassa');
        expect(status.enc_alg, agent.uuid).to.equal('ecc256');
        await pollUntil({ timeoutMs: 10_000, intervalMs: 100 }, 'two attestations', async () => ((await fleet?.tenant.getStatus(agent.uuid))?.attestation_count ?? 0) >= 2);
        expect((await fleet.tenant.getStatus(agent.uuid)).last_event_id).to.equal(null);
      }
    } finally {
      await fleet?.close();
    }
  });

  it('push fleet: 3 push agents attest on their own from logs kept in memory, the tampered one is refused with not_in_allowlist, close deregisters them', async function () {
    let fleet: RunningFleet<SimulatedPushAgent> | undefined;
    // The fleet's warnings, shown if deregistration leaves anything behind.
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    try {
      fleet = await startPushFleet({ logger, agents: 3, dataDir, databaseUrl: TEST_DATABASE_URL, databaseSchema: schema, quoteInterval: 0.5, imaEntriesPerMinute: 120 });
      const running = fleet;
      expect(running.agents).to.have.length(3);
      const registered = await Promise.all(running.agents.map((agent) => showRegistrarAgent(running.tenant.registrar, agent.uuid)));
      expect(registered.map((agent) => [agent.mtlsCert, agent.port])).to.deep.equal([[null, null], [null, null], [null, null]]);
      const attested = async (): Promise<boolean> => {
        const statuses = await Promise.all(running.agents.map((agent) => running.tenant.getStatus(agent.uuid)));
        return statuses.every((status) => status.operational_state === OperationalState.GET_QUOTE && (status.attestation_count ?? 0) >= 2);
      };
      await pollUntil({ timeoutMs: 20_000, intervalMs: 200 }, 'the push agents attesting twice each', attested);
      const [victim, ...others] = running.agents as [SimulatedPushAgent, ...SimulatedPushAgent[]];
      await victim.tamper();
      const failed = await running.tenant.waitForState(victim.uuid, [OperationalState.INVALID_QUOTE, OperationalState.FAILED], { timeoutMs: 10_000, intervalMs: 50 });
      expect(failed.last_event_id).to.equal(NOT_IN_ALLOWLIST);
      // Their logs are served from memory, not read from the files: emptied files change nothing they send.
      for (const agent of others) truncateSync(agent.agent.imaLogPath);
      const before = await Promise.all(others.map((agent) => running.tenant.getStatus(agent.uuid)));
      // The others keep attesting: each count grows (waited for, not timed: a loaded machine is slow).
      const grown = async (): Promise<boolean> => {
        const now = await Promise.all(others.map((agent) => running.tenant.getStatus(agent.uuid)));
        return now.every((status, i) => (status.attestation_count ?? 0) > (before[i]?.attestation_count ?? Infinity));
      };
      await pollUntil({ timeoutMs: 20_000, intervalMs: 200 }, 'the untampered push agents attesting again', grown);
      for (const agent of others) {
        const status = await running.tenant.getStatus(agent.uuid);
        expect(status.operational_state, agent.uuid).to.equal(OperationalState.GET_QUOTE);
        expect(await agent.agent.emulated?.logs.imaLineCount()).to.be.above(2);
      }
    } finally {
      await fleet?.close();
    }
    expect(await admin.withSchema(schema).table('verifier_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(await admin.withSchema(schema).table('registrar_agents').count({ n: '*' }), warnings.join('')).to.deep.equal([{ n: '0' }]);
    expect(await listening(fleet.verifierUrl)).to.equal(false);
  });

  it('ironlime fleet --push runs for --duration and reports; a base port is refused', async function () {
    const { code, text } = await runFleetCli(['--push', '--push-timeout', '30', '--duration', '8']);
    expect(code, text).to.equal(0);
    expect(text).to.match(/fleet of 2 push agents up: registrar http:\/\/127\.0\.0\.1:\d+, verifier https:\/\/127\.0\.0\.1:\d+/);
    expect(text).to.match(/2 agents: Get Quote 2; \d+ attestations/);
    expect(text).to.include('fleet stopped');
    const passed = (await admin.withSchema(schema).table('verifier_attestation_history').where({ outcome: 'pass' }).count({ n: '*' })) as { n: string }[];
    expect(Number(passed[0]?.n)).to.be.at.least(2);
    const refused = await startPushFleet({ agents: 2, dataDir, basePort: 9000 }).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
    expect(refused?.message).to.include('push agents open no port');
  });

  it('ironlime fleet runs for --duration and reports; bad options are usage errors', async function () {
    const { code, text } = await runFleetCli(['--duration', '1.5']);
    expect(code, text).to.equal(0);
    expect(text).to.match(/fleet of 2 agents up: registrar http:\/\/127\.0\.0\.1:\d+, verifier https:\/\/127\.0\.0\.1:\d+/);
    expect(text).to.match(/2 agents: Get Quote 2; \d+ attestations/);
    expect(text).to.include('fleet stopped');
    expect(await admin.withSchema(schema).table('verifier_attestation_history').count({ n: '*' })).to.not.deep.equal([{ n: '0' }]);

    const err: string[] = [];
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      expect(await main(['node', 'ironlime', 'fleet', '--agents', '0'])).to.equal(2);
      expect(await main(['node', 'ironlime', 'fleet', '--agents', '3', '--base-port', '65534', '--data-dir', dataDir])).to.equal(2);
    } finally {
      process.stderr.write = writeErr;
    }
    expect(err.join('')).to.include('--agents <n>').and.to.include('must be an integer from 1 to 5000');
    expect(err.join('')).to.include('basePort: must be 0 (any free port) or a port from 1024');
  });
});
