import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createDatabase } from '../../lib/db/database-factory.js';
import { lockPgliteFolder, PGLITE_LOCK_MARK_MS, PGLITE_LOCK_STALE_MS, PGLITE_LOCK_TAKEN_OVER_WARNING, pgliteLockFile } from '../../lib/db/pglite-folder-lock.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** A service in a process of its own: opens PGlite in argv[2], writes a row, says "open" and keeps it open until killed. */
const HOLDER =
  'const { createDatabase } = await import(process.argv[1]);' +
  'const database = await createDatabase({ dataDir: process.argv[2] });' +
  "await database.knex.raw('create table if not exists held (x int)');" +
  "await database.knex.raw('insert into held values (1)');" +
  "process.stdout.write('open\\n');" +
  'setInterval(() => undefined, 60_000);';
const FACTORY = path.resolve(import.meta.dirname, '../../lib/db/database-factory.js');

async function holdFolder(dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, FACTORY, dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  while (!output.includes('open\n')) {
    const state = await Promise.race([exited.then(() => 'exited'), new Promise((resolve) => setTimeout(resolve, 50, 'waiting'))]);
    if (state === 'exited') throw new Error(`the holder exited: ${output}`);
  }
  return child;
}

/** What opening a PGlite database in `dataDir` in this process fails with; undefined (the database closed again) when it opens. */
async function openingFailure(dataDir: string): Promise<Error | undefined> {
  return createDatabase({ dataDir }).then(
    async (database) => {
      await database.close();
      return undefined;
    },
    (error: Error) => error,
  );
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

describe('PGlite folder lock', function () {
  // Each test starts PGlite (seconds of WASM start-up, more on a loaded machine) in two processes.
  this.timeout(180_000);
  const dir = tempDirPerTest('ironlime-pglite-lock-');
  // These tests are about the lock, not the first start: their folders start as a copy of one initdb'd cluster.

  it('a second process opening a PGlite folder in use fails with ERR_DATABASE_UNAVAILABLE naming the holder, and the holder keeps its data', async () => {
    await seedPgliteFolder(dir.path);
    const holder = await holdFolder(dir.path);
    try {
      const failure = await openingFailure(dir.path);
      expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
      expect(failure?.message).to.include(`pid ${holder.pid}`).and.include('PostgreSQL');
    } finally {
      await kill(holder);
    }
    const database = await createDatabase({ dataDir: dir.path });
    try {
      expect(((await database.knex.raw('select count(*)::int as n from held')) as { rows: { n: number }[] }).rows).to.deep.equal([{ n: 1 }]);
    } finally {
      await database.close();
    }
  });

  it('the lock file of a killed process is taken over with a warning; close releases the lock, so the folder opens again in this process', async () => {
    await seedPgliteFolder(dir.path);
    const holder = await holdFolder(dir.path);
    await kill(holder);
    const lockFile = pgliteLockFile(path.join(dir.path, 'pglite'));
    expect(existsSync(lockFile)).to.equal(true);
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const database = await createDatabase({ dataDir: dir.path });
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((warning) => (warning as { code?: string }).code)).to.include(PGLITE_LOCK_TAKEN_OVER_WARNING);
      const again = await openingFailure(dir.path);
      expect(again, 'a second opener in the same process').to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
      await database.close();
      expect(existsSync(lockFile)).to.equal(false);
      const reopened = await createDatabase({ dataDir: dir.path });
      await reopened.close();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a lock file written on another host (a second container on the volume, both pid 1) is refused, not taken over, whatever its pid is here', async () => {
    const folder = path.join(dir.path, 'pglite');
    mkdirSync(folder, { recursive: true });
    const lockFile = pgliteLockFile(folder);
    // Its pid is this process's own: in another pid namespace it says nothing about the holder.
    const other = { pid: process.pid, processStart: '1', hostname: `not-${hostname()}`, openedAt: new Date().toISOString() };
    writeFileSync(lockFile, JSON.stringify(other));
    const failure = await openingFailure(dir.path);
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include(other.hostname).and.include(lockFile);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).to.deep.equal(other);
  });

  it('a lock file written in another pid namespace on this host (a container sharing the host name, both pid 1) is refused while it is marked, taken over once unmarked', async () => {
    const folder = await seedPgliteFolder(dir.path);
    const lockFile = pgliteLockFile(folder);
    // Same host name, this process's own pid, another namespace: the pid says nothing about the holder.
    const other = { pid: process.pid, processStart: '1', hostname: hostname(), pidNamespace: 'pid:[1]', openedAt: new Date().toISOString() };
    writeFileSync(lockFile, JSON.stringify(other));
    const failure = await createDatabase({ dataDir: dir.path }).then(
      async (database) => {
        await database.close();
        return undefined;
      },
      (error: Error) => error,
    );
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include('another pid namespace').and.include(lockFile);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).to.deep.equal(other);
    const unmarked = new Date(Date.now() - PGLITE_LOCK_STALE_MS - 10_000);
    utimesSync(lockFile, unmarked, unmarked);
    const database = await createDatabase({ dataDir: dir.path });
    await database.close();
  });

  it('an empty or garbled lock file (a crash before its data reached the disk) is refused while marked, taken over with a warning once unmarked', async () => {
    const folder = path.join(dir.path, 'pglite');
    const lockFile = pgliteLockFile(folder);
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    try {
      for (const garbled of ['', '{"pid":']) {
        writeFileSync(lockFile, garbled);
        expect(() => lockPgliteFolder(folder)).to.throw(/lock file .* is unreadable and was marked in use within the last 60 s/);
        expect(readFileSync(lockFile, 'utf8')).to.equal(garbled);
        const unmarked = new Date(Date.now() - PGLITE_LOCK_STALE_MS - 10_000);
        utimesSync(lockFile, unmarked, unmarked);
        const release = lockPgliteFolder(folder);
        expect(JSON.parse(readFileSync(lockFile, 'utf8'))).to.have.property('pid', process.pid);
        release();
        expect(existsSync(lockFile)).to.equal(false);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((warning) => (warning as { code?: string }).code === PGLITE_LOCK_TAKEN_OVER_WARNING).map((warning) => warning.message)).to.deep.equal(
        Array(2).fill(`took over the lock file of PGlite in ${folder}: its unreadable lock file was unmarked for 60 s`),
      );
    } finally {
      process.off('warning', onWarning);
    }
  });

  it("a holder records its pid namespace and keeps marking its lock file, so a start in another namespace sees it in use", async () => {
    await seedPgliteFolder(dir.path);
    const holder = await holdFolder(dir.path);
    try {
      const lockFile = pgliteLockFile(path.join(dir.path, 'pglite'));
      expect(JSON.parse(readFileSync(lockFile, 'utf8'))).to.have.property('pidNamespace', readlinkSync('/proc/self/ns/pid'));
      const unmarked = new Date(Date.now() - PGLITE_LOCK_STALE_MS - 10_000);
      utimesSync(lockFile, unmarked, unmarked);
      const deadline = Date.now() + PGLITE_LOCK_MARK_MS * 6;
      while (statSync(lockFile).mtimeMs < Date.now() - PGLITE_LOCK_STALE_MS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(Date.now() - statSync(lockFile).mtimeMs).to.be.below(PGLITE_LOCK_STALE_MS);
    } finally {
      await kill(holder);
    }
  });

  it('a holder keeps marking its lock file while its event loop is busy (a long PGlite query or migration runs in the main thread)', () => {
    const folder = path.join(dir.path, 'pglite');
    const release = lockPgliteFolder(folder);
    try {
      const lockFile = pgliteLockFile(folder);
      const unmarked = new Date(Date.now() - PGLITE_LOCK_STALE_MS - 10_000);
      utimesSync(lockFile, unmarked, unmarked);
      // The event loop stands still as under a query PGlite runs synchronously (never yielding here); marks must come anyway.
      const deadline = Date.now() + PGLITE_LOCK_MARK_MS * 3;
      while (Date.now() - statSync(lockFile).mtimeMs >= PGLITE_LOCK_STALE_MS && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      expect(Date.now() - statSync(lockFile).mtimeMs).to.be.below(PGLITE_LOCK_STALE_MS);
    } finally {
      release();
    }
  });

  it('a data dir where the lock file cannot be written (read-only) fails with ERR_DATABASE_UNAVAILABLE, not a bare file-system error', async () => {
    // Portable stand-in for a read-only folder, also when the tests run as root: `<dataDir>/pglite`
    // fits the kernel's path limit (4095 bytes) and the lock file's names beside it do not.
    let dataDir = dir.path;
    while (dataDir.length < 4083 - 202) dataDir = path.join(dataDir, 'd'.repeat(200));
    dataDir = path.join(dataDir, 'd'.repeat(4083 - dataDir.length - 1));
    const failure = await openingFailure(dataDir);
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include('lock file');
  });
});
