import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Registers mocha hooks in the calling `describe`: a new empty folder under the system temp dir before
 * each test (its path in `.path`), removed with its content after it.
 */
export function tempDirPerTest(prefix: string): { readonly path: string } {
  const folder = { path: '' };
  beforeEach(async () => {
    folder.path = await mkdtemp(path.join(tmpdir(), prefix));
  });
  afterEach(async () => {
    await rm(folder.path, { recursive: true, force: true });
  });
  return folder;
}
