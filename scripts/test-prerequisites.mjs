#!/usr/bin/env node
// Runs before `npm test` (the `pretest` script): makes sure a machine has what the suite needs —
// the npm dependencies, swtpm and tpm2-tools (later Chromium), and a PostgreSQL that answers at
// 127.0.0.1:5432 — and installs or starts what is missing when it may (root or passwordless sudo).
// When everything is present it only looks (PATH lookups and one TCP connect: well under a second)
// and changes nothing. Plain Node.js on purpose: it must run before `npm install` has.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Debian packages and the commands that prove each one is installed. */
const SYSTEM_TOOLS = [
  { pkg: 'swtpm', commands: ['swtpm'] },
  { pkg: 'swtpm-tools', commands: ['swtpm_setup'] },
  { pkg: 'tpm2-tools', commands: ['tpm2_quote', 'tpm2_evictcontrol'] },
  // The dashboard's browser tests drive Debian's Chromium through playwright-core.
  { pkg: 'chromium', commands: ['chromium'] },
  // Test schemas are copies of one migrated schema, made from its pg_dump (test/helpers/migrated-schema-copy.ts).
  { pkg: 'postgresql-client', commands: ['pg_dump'] },
];

const PG_HOST = '127.0.0.1';
const PG_PORT = 5432;

function say(message) {
  process.stderr.write(`test-prerequisites: ${message}\n`);
}

function fail(message) {
  say(message);
  process.exit(1);
}

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * How to run a command as root here: directly, through passwordless sudo, or not at all.
 * IRONLIME_NO_INSTALL=1 forbids it: the script then only reports what is missing.
 */
function privilegePrefix() {
  if (process.env.IRONLIME_NO_INSTALL === '1') return undefined;
  if (typeof process.getuid === 'function' && process.getuid() === 0) return [];
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n'];
  return undefined;
}

function run(argv, env = process.env) {
  say(`running: ${argv.join(' ')}`);
  const result = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', env, cwd: root });
  if (result.status !== 0) fail(`'${argv.join(' ')}' failed (exit ${result.status ?? result.signal})`);
}

/**
 * True when node_modules holds every package of package-lock.json at its locked version, read from
 * npm's own record of what it installed (node_modules/.package-lock.json). Optional packages that
 * npm skipped for this platform do not count as missing.
 */
function nodeModulesMatchLock() {
  const installedFile = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(installedFile)) return false;
  const wanted = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {};
  const installed = JSON.parse(readFileSync(installedFile, 'utf8')).packages ?? {};
  return Object.entries(wanted).every(
    ([name, entry]) => name === '' || entry.optional === true || installed[name]?.version === entry.version,
  );
}

/**
 * Installs the locked dependencies. Our own `prepare` script (tsc) is skipped when no locked package has
 * an install script of its own: `npm test` builds right after, and compiling twice cost a fresh machine
 * about a minute of the suite's time.
 */
function ensureNodeModules() {
  if (nodeModulesMatchLock()) return;
  const locked = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages ?? {};
  const scriptsNeeded = Object.entries(locked).some(([name, entry]) => name !== '' && entry.hasInstallScript === true);
  run(['npm', process.env.CI ? 'ci' : 'install', '--no-audit', '--no-fund', ...(scriptsNeeded ? [] : ['--ignore-scripts'])]);
}

function ensureSystemTools() {
  const missing = SYSTEM_TOOLS.filter((tool) => !tool.commands.every(onPath)).map((tool) => tool.pkg);
  if (missing.length === 0) return;
  const install = ['apt-get', 'install', '-y', '-qq', ...missing];
  const prefix = privilegePrefix();
  if (prefix === undefined || !onPath('apt-get')) {
    fail(`the tests need ${missing.join(', ')}, which are not installed, and this user cannot install them.\n` +
      `  Run:  sudo apt-get update && sudo ${install.join(' ')}\n  then run the tests again.`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run([...prefix, 'apt-get', 'update', '-qq'], env);
  run([...prefix, ...install], env);
  const still = SYSTEM_TOOLS.filter((tool) => !tool.commands.every(onPath)).map((tool) => tool.pkg);
  if (still.length > 0) fail(`installed, but still missing commands from: ${still.join(', ')}`);
}

function postgresAnswers(timeoutMs = 500) {
  return new Promise((done) => {
    const socket = connect({ host: PG_HOST, port: PG_PORT });
    const finish = (ok) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function ensurePostgres() {
  if (await postgresAnswers()) return;
  const clusters = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
  if (clusters.length === 0 || !onPath('pg_ctlcluster')) {
    fail(`nothing answers at ${PG_HOST}:${PG_PORT} and no local PostgreSQL cluster is installed.\n` +
      '  The tests need PostgreSQL with trust auth, database `test`, user `postgres`:\n' +
      '  apt-get install -y postgresql, or point a server at that address, then run the tests again.');
  }
  const prefix = privilegePrefix();
  const start = ['pg_ctlcluster', '--skip-systemctl-redirect', clusters.sort().at(-1), 'main', 'start'];
  if (prefix === undefined) fail(`PostgreSQL is installed but not running. Run:  sudo ${start.join(' ')}`);
  run([...prefix, ...start]);
  for (let attempt = 0; attempt < 30; attempt += 1) {
    if (await postgresAnswers()) return;
    await new Promise((wake) => setTimeout(wake, 1000));
  }
  fail(`PostgreSQL was started but does not answer at ${PG_HOST}:${PG_PORT} after 30 s`);
}

ensureNodeModules();
ensureSystemTools();
await ensurePostgres();
