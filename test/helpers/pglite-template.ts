import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDatabase } from '../../lib/db/database-factory.js';
import { pgliteFirstStartMarker } from '../../lib/db/pglite-first-start.js';
import { pgliteLockFile } from '../../lib/db/pglite-folder-lock.js';

/**
 * One PGlite folder per test process as `createDatabase`'s first start leaves it (initdb done, closed:
 * no lock file, no first-start mark, no tables), made on first use. PGlite's initdb is about 2 s of
 * WASM CPU each time (after its compile); a copy of the folder about 0.3 s. For tests about an existing
 * folder (its lock, its data, the CLI reading it), not about the first start itself.
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
  if (existsSync(folder)) throw new Error(`${folder} exists: seeding it would copy the template into it`);
  // cp(1), not fs.cp: the folder is about 1,000 files and 27 MB, and fs.cp took two to four times the CPU.
  await promisify(execFile)('cp', ['-R', await template, folder]);
  return folder;
}
