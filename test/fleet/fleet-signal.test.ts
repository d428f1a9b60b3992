import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { REPO_ROOT } from '../helpers/paths.js';

/**
 * `ironlime fleet` stopped by SIGTERM, as a real child process so the signal is real. Issue 11 item 7:
 * during `--duration` it ended without its documented teardown, leaving its agents enrolled. During the
 * enrolment the signal was caught, but acted on only once every agent was enrolled (minutes for
 * thousands of agents): the fleet now starts no further agent and tears down the ones it started.
 */
describe('ironlime fleet: SIGTERM', function () {
  let admin: Knex;
  let schema: string;
  let dataDir: string;

  beforeEach(async function () {
    schema = `test_fleet_${randomBytes(6).toString('hex')}`;
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw('create schema ??', [schema]);
    dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-fleet-signal-'));
  });

  afterEach(async function () {
    await admin.raw('drop schema if exists ?? cascade', [schema]);
    await admin.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs `ironlime fleet` with `options`, sends SIGTERM once its output holds `marker`, and gives how it ended. */
  async function terminatedAt(options: readonly string[], marker: string): Promise<{ end: { code: number | null; signal: NodeJS.Signals | null }; out: string }> {
    const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'ironlime.js'), 'fleet', ...options, '--data-dir', dataDir, '--database', url, '--report', '0', '--log-level', 'silent'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes(marker)) {
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`fleet ended before printing "${marker}":\n${out}`)));
    });
    child.kill('SIGTERM');
    return { end: await exited, out };
  }

  /** Exit 0 after "fleet stopped", with the verifier and registrar emptied and the agents' folder removed. */
  async function expectTornDown(ended: { end: { code: number | null; signal: NodeJS.Signals | null }; out: string }): Promise<void> {
    expect(ended.end, ended.out).to.deep.equal({ code: 0, signal: null });
    expect(ended.out).to.include('fleet stopped');
    expect(await admin.withSchema(schema).table('verifier_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(await admin.withSchema(schema).table('registrar_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(existsSync(path.join(dataDir, 'fleet', 'agents'))).to.equal(false);
  }

  it('during --duration: tears down (verifier and registrar emptied, agents removed) and exits 0', async function () {
    await expectTornDown(await terminatedAt(['--agents', '2', '--quote-interval', '0.5', '--duration', '600'], 'fleet of 2 agents up'));
  });

  it('during the enrolment: enrols no further agent, tears down those enrolled and exits 0', async function () {
    this.timeout(300_000);
    // The first progress line comes at 10 of 100: ninety agents are still to enrol.
    const ended = await terminatedAt(['--agents', '100', '--quote-interval', '1'], '/100 agents registered and enrolled');
    expect(ended.out, 'the start went on to the end').not.to.include('agents up');
    await expectTornDown(ended);
  });
});
