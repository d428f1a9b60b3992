import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PkiError } from './pki-error.js';

/** Private keys are readable by their owner only. */
export const PRIVATE_KEY_MODE = 0o600;
export const CERTIFICATE_MODE = 0o644;

/**
 * Writes `content` to a fresh temporary file beside `target` with `mode` and returns its path; the
 * caller publishes it with `rename` (replace) or `link` (create only if absent) so that readers never
 * see half a file.
 */
export async function writeTemp(target: string, content: string | Uint8Array, mode: number): Promise<string> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(temp, content, { mode, flag: 'wx' });
  // The umask may have narrowed the mode at creation; make it exact.
  await chmod(temp, mode);
  return temp;
}

/** Replaces `target` atomically with `content`. */
export async function writeFileAtomic(target: string, content: string | Uint8Array, mode: number): Promise<void> {
  const temp = await writeTemp(target, content, mode);
  try {
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw new PkiError(`cannot write ${target}`, { cause: error });
  }
}

/** The file's text, or undefined when it does not exist. Other read failures throw `PkiError`. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) {
      return undefined;
    }
    throw new PkiError(`cannot read ${file}`, { cause: error });
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
