import type { Stats } from 'node:fs';
import { FileReadError, readRegularFile, readRegularFileSync, type RegularFileRead } from '../files/regular-file.js';
import { PkiError } from './pki-error.js';

/** Largest private key file read: a PEM key, even RSA 16384 with its parameters, is a few KiB. */
const MAX_PRIVATE_KEY_BYTES = 1024 * 1024;

/** Permission bits of group and others: none may be set on a file holding a private key. */
const GROUP_OTHER_BITS = 0o077;

/** A PEM private key block of any kind (PKCS#8, encrypted, RSA, EC, OpenSSH). */
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** The refusal of a file its group or others may use. */
class ExposedPrivateFile extends PkiError {}

/**
 * The text of a private key file, or undefined when it does not exist. Like ssh, refuses a file that
 * its group or others may read or write (whoever could read it holds the key, and nobody should be
 * relying on that key any more), and anything that is not a regular file. The mode is read from the
 * open file, so it is the file that is then read. @throws PkiError
 */
export async function readPrivateIfExists(file: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, privateRead(file))).toString('utf8');
  } catch (error) {
    if (error instanceof FileReadError && error.code === 'ENOENT') return undefined;
    throw asPkiError(file, error);
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
    if (cause instanceof ExposedPrivateFile) {
      // A file holding no PEM private key exposes none: its text goes to the caller's check of what it
      // holds, which names the option (a certificate given as the key was "holds a private key ... chmod 600").
      const unchecked = await readRegularFile(file, { setting: file, maxBytes: MAX_PRIVATE_KEY_BYTES }).then((bytes) => bytes.toString('utf8'), () => undefined);
      if (unchecked !== undefined && !PEM_PRIVATE_KEY.test(unchecked)) return unchecked;
    }
    if (how.refusalAsError !== true) throw cause;
    throw new how.error(how.label, cause instanceof Error ? cause.message : String(cause), { cause });
  }
  if (text === undefined) throw new how.error(how.label, `cannot read ${file}: no such file`);
  return text;
}

/**
 * `readPrivateIfExists` for synchronous callers; the file must exist. A file longer than `maxBytes`
 * (default: any private key's bound) is refused without being read past it. @throws PkiError
 */
export function readPrivateSync(file: string, maxBytes = MAX_PRIVATE_KEY_BYTES): string {
  try {
    return readRegularFileSync(file, privateRead(file, maxBytes)).toString('utf8');
  } catch (error) {
    throw asPkiError(file, error, maxBytes);
  }
}

/** Opened without blocking and checked on the open file (`readRegularFile`), so it is that file that is read. */
function privateRead(file: string, maxBytes = MAX_PRIVATE_KEY_BYTES): RegularFileRead {
  return { setting: file, maxBytes, check: (info) => checkPrivate(file, info) };
}

function asPkiError(file: string, error: unknown, maxBytes = MAX_PRIVATE_KEY_BYTES): unknown {
  if (!(error instanceof FileReadError)) return error;
  if (error.fault === 'not-regular') return new PkiError(`${file} should hold a private key but is not a regular file`);
  if (error.fault === 'too-large') return new PkiError(`${file} should hold a private key but holds more than the ${maxBytes} bytes it may`);
  return new PkiError(`cannot read ${file}`, { cause: error.cause });
}

function checkPrivate(file: string, info: Stats): void {
  if (!info.isFile()) {
    throw new PkiError(`${file} should hold a private key but is not a regular file`);
  }
  if ((info.mode & GROUP_OTHER_BITS) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new ExposedPrivateFile(`${file} holds a private key but its permissions ${mode} let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`);
  }
}
