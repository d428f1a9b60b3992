import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
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
  const temp = tempPathOf(target);
  await writeFile(temp, content, { mode, flag: 'wx' });
  // The umask may have narrowed the mode at creation; make it exact.
  await chmod(temp, mode);
  return temp;
}

/**
 * Creates `target` with `content` and exactly `mode` unless it exists, whole or not at all: written to a
 * temporary file, then published with an exclusive `link`. Another process starting at the same time
 * thus either makes it first (false: read its file) or finds it complete, never empty or half written,
 * and a process killed meanwhile leaves no `target`. @throws PkiError when it can be neither made nor found
 */
export function createFileOnceSync(target: string, content: string | Uint8Array, mode: number): boolean {
  const temp = tempPathOf(target);
  try {
    writeFileSync(temp, content, { mode, flag: 'wx' });
    chmodSync(temp, mode);
    linkSync(temp, target);
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw creationError(target, error);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** `createFileOnceSync` for asynchronous callers. @throws PkiError */
export async function createFileOnce(target: string, content: string | Uint8Array, mode: number): Promise<boolean> {
  let temp: string;
  try {
    temp = await writeTemp(target, content, mode);
  } catch (error) {
    throw creationError(target, error);
  }
  try {
    await link(temp, target);
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw creationError(target, error);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
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

/** Errors of `link` on a file system that has no hard links (FAT: EPERM; some network and FUSE ones: ENOTSUP, ENOSYS). */
const NO_HARD_LINKS = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'];

/**
 * Why `target` could not be made, with the system's reason in the message (the CLI prints only the
 * message), and what to do when its folder's file system has no hard links.
 */
function creationError(target: string, error: unknown): PkiError {
  const reason = error instanceof Error ? error.message : String(error);
  const hint = NO_HARD_LINKS.some((code) => isErrno(error, code))
    ? `; it is made with a hard link, so that processes starting at once share one: put ${path.dirname(target)} on a file system with hard links`
    : '';
  return new PkiError(`cannot create ${target}: ${reason}${hint}`, { cause: error });
}

function tempPathOf(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
