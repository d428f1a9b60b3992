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
    throw new PkiError(`${file} holds a private key but is not a regular file`);
  }
  if ((info.mode & GROUP_OTHER_BITS) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new PkiError(`${file} holds a private key but its permissions ${mode} let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`);
  }
}
