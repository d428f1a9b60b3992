import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { DatabaseUnavailable } from '../../interfaces/errors.js';

/** The process warning's code when a PGlite folder whose first start was cut off is moved aside and created again. */
export const PGLITE_FIRST_START_REDONE_WARNING = 'IRONLIME_PGLITE_FIRST_START_REDONE';

/** The file beside a PGlite folder that says its first start (PGlite's initdb) has not finished. */
export function pgliteFirstStartMarker(folder: string): string {
  return `${folder}.first-start`;
}

/**
 * Called with the folder's lock held (`lockPgliteFolder`), before PGlite opens it. PGlite's first start
 * in an empty folder writes a whole cluster (initdb); a process killed meanwhile left a folder that
 * PGlite never opens again ("Aborted()"). So an empty folder is marked before that start and the
 * returned `done` removes the mark once the database answers. A folder still marked was cut off in
 * its first start: it is moved aside (`<folder>.first-start-cut-<time>`), never deleted, and created
 * again with a process warning naming where it went, since a mark can outlive its start (a backup
 * restored into the folder afterwards). A mark that is not a plain file, or a folder that is not a
 * plain directory (a symbolic link), is refused: neither is what a cut-off first start leaves.
 *
 * @returns `done`, to call once the database answers.
 * @throws DatabaseUnavailable when the mark or the folder is refused or cannot be written.
 */
export function beginPgliteFirstStart(folder: string): () => void {
  const marker = pgliteFirstStartMarker(folder);
  try {
    const mark = lstatSync(marker, { throwIfNoEntry: false });
    if (mark !== undefined) {
      redoFirstStart(folder, marker, mark.isFile());
    } else if (readdirSync(folder).length === 0) {
      writeFileSync(marker, '');
    } else {
      return () => undefined;
    }
  } catch (error) {
    if (error instanceof DatabaseUnavailable) throw error;
    throw new DatabaseUnavailable(`PGlite in ${folder}: cannot prepare its first start: ${(error as Error).message}`, { cause: error });
  }
  return () => rmSync(marker, { force: true });
}

function redoFirstStart(folder: string, marker: string, markIsFile: boolean): void {
  if (!markIsFile || !lstatSync(folder).isDirectory()) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder}: ${marker} says its first start was cut off, but ${markIsFile ? 'the folder is not a plain directory' : 'that mark is not a plain file'}; ` +
        'nothing is moved: if the folder holds the data to keep, delete the mark',
    );
  }
  const aside = `${folder}.first-start-cut-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(folder, aside);
  mkdirSync(folder);
  process.emitWarning(
    `PGlite in ${folder}: its first start was cut off (${marker} left); the folder is moved to ${aside} and created again: ` +
      'delete that copy once sure it holds nothing to keep',
    { code: PGLITE_FIRST_START_REDONE_WARNING },
  );
}
