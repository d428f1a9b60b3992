import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDatabase } from '../../lib/db/database-factory.js';
import { pgliteFirstStartMarker } from '../../lib/db/pglite-first-start.js';
import { pgliteLockFile } from '../../lib/db/pglite-folder-lock.js';

/**
 * One PGlite folder per test process as `createDatabase`'s first start leaves it (initdb done, closed:
 * no lock file, no first-start mark, no tables), made on first use. PGlite's initdb is seconds of WASM
 * CPU each time; a copy of its folder is milliseconds. For tests about an existing folder (its lock,
 * its data, the CLI reading it), not about the first start itself.
 */
let template: Promise<string> | undefined;

async function makeTemplate(): Promise<string> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ironlime-pglite-template-'));
  process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const database = await createDatabase({ dataDir });
  await database.close();
  const folder = path.join(dataDir, 'pglite');
  if (existsSync(pgliteLockFile(folder)) || existsSync(pgliteFirstStartMarker(folder)) || !readdirSync(folder).includes('PG_VERSION')) {
    throw new Error(`the PGlite template ${folder} is not a closed, finished cluster`);
  }
  return folder;
}

/** Copies the process's template into `<dataDir>/pglite` (which must not exist yet) and returns that folder. */
export async function seedPgliteFolder(dataDir: string): Promise<string> {
  template ??= makeTemplate();
  const folder = path.join(dataDir, 'pglite');
  await mkdir(dataDir, { recursive: true });
  await cp(await template, folder, { recursive: true, errorOnExist: true, force: false });
  return folder;
}
