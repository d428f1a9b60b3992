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
 * Issue 11 item 7: `ironlime fleet --duration` ended on SIGTERM without its documented teardown,
 * leaving its agents enrolled. The command runs as a real child process here, so the signal is real.
 */
describe('ironlime fleet: SIGTERM during --duration', function () {
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

  it('tears down (verifier and registrar emptied, agents removed) and exits 0', async function () {
    const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'ironlime.js'), 'fleet', '--agents', '2', '--data-dir', dataDir, '--database', url,
        '--quote-interval', '0.5', '--duration', '600', '--report', '0', '--log-level', 'silent'],
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
        if (out.includes('fleet of 2 agents up')) {
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`fleet ended before it was up:\n${out}`)));
    });
    child.kill('SIGTERM');
    const end = await exited;
    expect(end, out).to.deep.equal({ code: 0, signal: null });
    expect(out).to.include('fleet stopped');
    expect(await admin.withSchema(schema).table('verifier_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(await admin.withSchema(schema).table('registrar_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(existsSync(path.join(dataDir, 'fleet', 'agents'))).to.equal(false);
  });
});

/**
 * A signal while `ironlime fleet` was still enrolling was caught, but acted on only once every agent
 * was enrolled (minutes for thousands of agents): the fleet now starts no further agent and tears
 * down the ones it started.
 */
describe('ironlime fleet: SIGTERM during the enrolment', function () {
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

  it('enrols no further agent, tears down those enrolled and exits 0', async function () {
    this.timeout(300_000);
    const url = `${TEST_DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bin', 'ironlime.js'), 'fleet', '--agents', '100', '--data-dir', dataDir, '--database', url,
        '--quote-interval', '1', '--report', '0', '--log-level', 'silent'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    // The first progress line comes at 10 of 100: ninety agents are still to enrol.
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('/100 agents registered and enrolled')) {
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`fleet ended before enrolling:\n${out}`)));
    });
    child.kill('SIGTERM');
    const end = await exited;
    expect(end, out).to.deep.equal({ code: 0, signal: null });
    expect(out).to.include('fleet stopped');
    expect(out, 'the start went on to the end').not.to.include('agents up');
    expect(await admin.withSchema(schema).table('verifier_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(await admin.withSchema(schema).table('registrar_agents').count({ n: '*' })).to.deep.equal([{ n: '0' }]);
    expect(existsSync(path.join(dataDir, 'fleet', 'agents'))).to.equal(false);
  });
});
