import { existsSync } from 'node:fs';
import path from 'node:path';

/** The repository root: the nearest folder above the compiled test that holds package.json. */
export const REPO_ROOT = findRepoRoot(import.meta.dirname);

/** `../shared/vectors` beside the repository: real upstream test data (see its INDEX.md). */
export const VECTORS_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'vectors');

/** Absolute path of a file under the shared vectors folder. */
export function vectorPath(...parts: string[]): string {
  return path.join(VECTORS_DIR, ...parts);
}

function findRepoRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no package.json above ${start}`);
    }
    dir = parent;
  }
  return dir;
}
