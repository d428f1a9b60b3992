import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { createDatabase } from '../../lib/db/database-factory.js';
import { PGLITE_FIRST_START_REDONE_WARNING, pgliteFirstStartMarker } from '../../lib/db/pglite-first-start.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

describe('PGlite first start', function () {
  // PGlite's first start (initdb in WASM) takes seconds, more on a loaded machine.
  this.timeout(180_000);
  const dir = tempDirPerTest('ironlime-pglite-first-');

  it('a first start leaves no mark once the database answers', async () => {
    const database = await createDatabase({ dataDir: dir.path });
    await database.close();
    expect(existsSync(pgliteFirstStartMarker(path.join(dir.path, 'pglite')))).to.equal(false);
  });

  it('a folder whose first start was cut off (still marked, half written) is created again with a warning instead of failing for ever', async () => {
    const folder = path.join(dir.path, 'pglite');
    mkdirSync(folder);
    // What a start killed during initdb leaves: PGlite then reads the folder as a cluster and aborts.
    writeFileSync(path.join(folder, 'PG_VERSION'), '17\n');
    writeFileSync(pgliteFirstStartMarker(folder), '');
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(String((warning as { code?: string }).code));
    process.on('warning', onWarning);
    try {
      const database = await createDatabase({ dataDir: dir.path });
      try {
        expect(((await database.knex.raw('select 1 as one')) as { rows: unknown[] }).rows).to.deep.equal([{ one: 1 }]);
      } finally {
        await database.close();
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).to.include(PGLITE_FIRST_START_REDONE_WARNING);
      expect(existsSync(pgliteFirstStartMarker(folder))).to.equal(false);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a folder with a cluster and no mark is never emptied', async () => {
    await seedPgliteFolder(dir.path);
    const first = await createDatabase({ dataDir: dir.path });
    await first.knex.raw('create table kept (x int)');
    await first.knex.raw('insert into kept values (7)');
    await first.close();
    const again = await createDatabase({ dataDir: dir.path });
    try {
      expect(((await again.knex.raw('select x from kept')) as { rows: unknown[] }).rows).to.deep.equal([{ x: 7 }]);
    } finally {
      await again.close();
    }
  });
});

/** The error opening PGlite in `dataDir` fails with; undefined when it opens (then closed). */
function openingFailure(dataDir: string): Promise<Error | undefined> {
  return createDatabase({ dataDir }).then(
    async (database) => {
      await database.close();
      return undefined;
    },
    (error: Error) => error,
  );
}

describe('PGlite first start: a mark left beside a folder that holds data', function () {
  this.timeout(180_000);
  const dir = tempDirPerTest('ironlime-pglite-first-kept-');

  /** A folder with a table and a row: data restored or copied in after a first start was cut off, its mark still there. */
  async function folderWithData(dataDir: string): Promise<string> {
    await seedPgliteFolder(dataDir);
    const first = await createDatabase({ dataDir });
    await first.knex.raw('create table kept (x int)');
    await first.knex.raw('insert into kept values (7)');
    await first.close();
    return path.join(dataDir, 'pglite');
  }

  it('a marked folder is moved aside, never deleted: its rows are still there, and the warning names where', async () => {
    const folder = await folderWithData(dir.path);
    writeFileSync(pgliteFirstStartMarker(folder), '');
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      const again = await createDatabase({ dataDir: dir.path });
      await again.close();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    const aside = readdirSync(dir.path).filter((name) => name.startsWith('pglite.first-start-cut-'));
    expect(aside).to.have.length(1);
    expect(warnings.join('\n')).to.include(path.join(dir.path, aside[0] ?? ''));
    const check = path.join(dir.path, 'check');
    mkdirSync(check);
    renameSync(path.join(dir.path, aside[0] ?? ''), path.join(check, 'pglite'));
    const reopened = await createDatabase({ dataDir: check });
    let kept: unknown[];
    try {
      kept = ((await reopened.knex.raw('select x from kept')) as { rows: unknown[] }).rows;
    } finally {
      await reopened.close();
    }
    expect(kept).to.deep.equal([{ x: 7 }]);
  });

  it('a marked folder that is a symbolic link is refused with an error naming the mark, and the link and its data stay', async () => {
    const target = await folderWithData(path.join(dir.path, 'elsewhere'));
    const dataDir = path.join(dir.path, 'service');
    mkdirSync(dataDir);
    const folder = path.join(dataDir, 'pglite');
    symlinkSync(target, folder);
    writeFileSync(pgliteFirstStartMarker(folder), '');
    const failure = await openingFailure(dataDir);
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include(pgliteFirstStartMarker(folder));
    expect(lstatSync(folder).isSymbolicLink()).to.equal(true);
    const kept = await createDatabase({ dataDir: path.join(dir.path, 'elsewhere') });
    try {
      expect(((await kept.knex.raw('select x from kept')) as { rows: unknown[] }).rows).to.deep.equal([{ x: 7 }]);
    } finally {
      await kept.close();
    }
  });

  it('a mark that is not a plain file is refused with an error naming it, and the folder stays', async () => {
    const folder = await folderWithData(dir.path);
    mkdirSync(pgliteFirstStartMarker(folder));
    const failure = await openingFailure(dir.path);
    expect(failure).to.have.property('code', 'ERR_DATABASE_UNAVAILABLE');
    expect(failure?.message).to.include(pgliteFirstStartMarker(folder));
    rmdirSync(pgliteFirstStartMarker(folder));
    const kept = await createDatabase({ dataDir: dir.path });
    try {
      expect(((await kept.knex.raw('select x from kept')) as { rows: unknown[] }).rows).to.deep.equal([{ x: 7 }]);
    } finally {
      await kept.close();
    }
  });
});
