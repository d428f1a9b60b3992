import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseUnavailable } from '../../interfaces/errors.js';

/** The process warning's code when a PGlite folder whose first start was cut off is created again. */
export const PGLITE_FIRST_START_REDONE_WARNING = 'IRONLIME_PGLITE_FIRST_START_REDONE';

/** The file beside a PGlite folder that says its first start (PGlite's initdb) has not finished. */
export function pgliteFirstStartMarker(folder: string): string {
  return `${folder}.first-start`;
}

/**
 * Called with the folder's lock held (`lockPgliteFolder`), before PGlite opens it. PGlite's first start
 * in an empty folder writes a whole cluster (initdb); a process killed meanwhile left a folder that
 * PGlite never opens again ("Aborted()"). So an empty folder is marked before that start and the
 * returned `done` removes the mark once the database answers; a folder still marked was cut off in
 * its first start, holds nothing written by ironlime yet, and is emptied to start again, with a
 * process warning.
 *
 * @returns `done`, to call once the database answers.
 * @throws DatabaseUnavailable when the mark or the folder cannot be written.
 */
export function beginPgliteFirstStart(folder: string): () => void {
  const marker = pgliteFirstStartMarker(folder);
  try {
    if (existsSync(marker)) {
      rmSync(folder, { recursive: true, force: true });
      mkdirSync(folder);
      process.emitWarning(`PGlite in ${folder}: its first start was cut off (killed during initdb); the folder, which held no data yet, is created again`, {
        code: PGLITE_FIRST_START_REDONE_WARNING,
      });
    } else if (readdirSync(folder).length === 0) {
      writeFileSync(marker, '');
    } else {
      return () => undefined;
    }
  } catch (error) {
    throw new DatabaseUnavailable(`PGlite in ${folder}: cannot prepare its first start: ${(error as Error).message}`, { cause: error });
  }
  return () => rmSync(marker, { force: true });
}
