import { chmod, mkdir } from 'node:fs/promises';
import { TpmAccessError } from './tpm-access-error.js';

/**
 * Narrows `dir` (`what` names it: "the swtpm state folder") to mode 0700, making it (and any folder
 * above it that is missing, also 0700) when `create`. Only a folder's owner may narrow it, and only one
 * who may write to its parent may make it: a folder (or parent) of another user (root's, made by an
 * earlier run under sudo) is a `TpmAccessError` saying so, not the bare EPERM or EACCES of chmod or mkdir.
 */
export async function makeFolderPrivate(dir: string, what: string, create = false): Promise<void> {
  try {
    if (create) await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'EPERM' || code === 'EACCES'
        ? 'it, or the folder it is made in, belongs to another user; give it to the user the agent runs as, or choose another folder'
        : (error as Error).message;
    throw new TpmAccessError(`${what} ${dir} cannot be made private to this user (mode 0700): ${reason}`, { cause: error });
  }
}
