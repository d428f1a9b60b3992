import { chmod } from 'node:fs/promises';
import { TpmAccessError } from './tpm-access-error.js';

/**
 * Narrows `dir` (`what` names it: "the swtpm state folder") to mode 0700. Only its owner may: a folder
 * of another user (root's, made by an earlier run under sudo) is a `TpmAccessError` saying so, not
 * the bare EPERM of chmod.
 */
export async function makeFolderPrivate(dir: string, what: string): Promise<void> {
  try {
    await chmod(dir, 0o700);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'EPERM' ? 'it belongs to another user; give it to the user the agent runs as, or choose another folder' : (error as Error).message;
    throw new TpmAccessError(`${what} ${dir} cannot be made private to this user (mode 0700): ${reason}`, { cause: error });
  }
}
