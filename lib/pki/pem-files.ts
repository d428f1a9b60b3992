import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, link, open, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FileReadError, MAX_PEM_FILE_BYTES, readRegularFile } from '../files/regular-file.js';
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
 * temporary file and flushed to disk, then published with an exclusive `link` (never over an existing
 * name), and the folder flushed. Another process starting at the same time thus either makes it first
 * (false: read its file) or finds it complete, never empty or half written, and a process killed (or a
 * machine that lost power) meanwhile leaves no `target`, or an empty one.
 * @throws PkiError when it can be neither made nor found
 */
export function createFileOnceSync(target: string, content: string | Uint8Array, mode: number): boolean {
  const temp = tempPathOf(target);
  try {
    writeFlushedSync(temp, content, mode);
    linkSync(temp, target);
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw creationError(target, error);
  } finally {
    rmSync(temp, { force: true });
  }
  syncFolderOf(target);
  return true;
}

/** Creates `file` (which must not exist) holding `content` with exactly `mode`, flushed to disk. */
function writeFlushedSync(file: string, content: string | Uint8Array, mode: number): void {
  const fd = openSync(file, 'wx', mode);
  try {
    writeFileSync(fd, content);
    // The umask may have narrowed the mode at creation; make it exact.
    fchmodSync(fd, mode);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `createFileOnceSync` for asynchronous callers. @throws PkiError */
export async function createFileOnce(target: string, content: string | Uint8Array, mode: number): Promise<boolean> {
  const temp = tempPathOf(target);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, target);
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw creationError(target, error);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  syncFolderOf(target);
  return true;
}

/** Flushes the folder of `file` to disk, so that a name just linked in it survives a power loss. */
function syncFolderOf(file: string): void {
  const folder = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

/**
 * Replaces `target` with `content` and exactly `mode`, whole or not at all, and durably: a temporary file
 * flushed to disk, renamed over `target`, the folder flushed. For state that must survive the process
 * being killed (or the machine losing power) right after the call returns.
 * @throws PkiError when it cannot be written
 */
export function replaceFileSync(target: string, content: string | Uint8Array, mode: number): void {
  const temp = tempPathOf(target);
  try {
    writeFlushedSync(temp, content, mode);
    renameSync(temp, target);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new PkiError(`cannot write ${target}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  syncFolderOf(target);
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

/**
 * The file's text, or undefined when it does not exist; a regular file of at most `MAX_PEM_FILE_BYTES`,
 * read without blocking (`readRegularFile`). Other read failures throw `PkiError`.
 */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, { setting: file, maxBytes: MAX_PEM_FILE_BYTES })).toString('utf8');
  } catch (error) {
    if (error instanceof FileReadError && error.code === 'ENOENT') {
      return undefined;
    }
    throw new PkiError(error instanceof FileReadError && error.fault !== 'unreadable' ? error.detail : `cannot read ${file}`, { cause: error });
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
