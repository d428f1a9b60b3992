import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { createDatabase } from '../../lib/db/database-factory.js';
import { PGLITE_FIRST_START_REDONE_WARNING, pgliteFirstStartMarker } from '../../lib/db/pglite-first-start.js';
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
