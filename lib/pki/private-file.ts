import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { isErrno } from './pem-files.js';
import { PkiError } from './pki-error.js';

/**
 * Opened without blocking: a path naming a FIFO (a setting, a node's `driver_info`) would otherwise
 * hold a thread of libuv's pool until a writer came; the type check then refuses it. A regular file
 * reads as usual.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Permission bits of group and others: none may be set on a file holding a private key. */
const GROUP_OTHER_BITS = 0o077;

/**
 * The text of a private key file, or undefined when it does not exist. Like ssh, refuses a file that
 * its group or others may read or write (whoever could read it holds the key, and nobody should be
 * relying on that key any more), and anything that is not a regular file. The mode is read from the
 * open file, so it is the file that is then read. @throws PkiError
 */
export async function readPrivateIfExists(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw new PkiError(`cannot read ${file}`, { cause: error });
  }
  try {
    checkPrivate(file, await handle.stat());
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** How a caller that requires a private key file reports its faults. */
export interface RequiredPrivateFile {
  /** The setting or option that named the file; the caller's error names it. */
  readonly label: string;
  /** The caller's error type, built as `new error(label, detail, { cause })`. */
  readonly error: new (label: string, detail: string, options?: { cause?: unknown }) => Error;
  /**
   * Whether a file that exists but is refused (see `readPrivateIfExists`: group or others may use it,
   * not a regular file, unreadable) is reported as `error` too, with the refusal's message; by default
   * the refusal (`PkiError`) passes through.
   */
  readonly refusalAsError?: boolean;
}

/**
 * `readPrivateIfExists` for a file that must exist: an absent one is `error` naming `label`, with the
 * one wording every caller uses (`cannot read <file>: no such file`). @throws that error or PkiError
 */
export async function readRequiredPrivate(file: string, how: RequiredPrivateFile): Promise<string> {
  let text: string | undefined;
  try {
    text = await readPrivateIfExists(file);
  } catch (cause) {
    if (how.refusalAsError !== true) throw cause;
    throw new how.error(how.label, cause instanceof Error ? cause.message : String(cause), { cause });
  }
  if (text === undefined) throw new how.error(how.label, `cannot read ${file}: no such file`);
  return text;
}

/** `readPrivateIfExists` for synchronous callers; the file must exist. @throws PkiError */
export function readPrivateSync(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (error) {
    throw new PkiError(`cannot read ${file}`, { cause: error });
  }
  try {
    checkPrivate(file, fstatSync(fd));
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

function checkPrivate(file: string, info: Stats): void {
  if (!info.isFile()) {
    throw new PkiError(`${file} should hold a private key but is not a regular file`);
  }
  if ((info.mode & GROUP_OTHER_BITS) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new PkiError(`${file} holds a private key but its permissions ${mode} let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`);
  }
}
