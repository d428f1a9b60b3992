import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Opened without blocking: opening a FIFO to read waits for a writer, holding the main thread (sync)
 * or one of libuv's four pool threads (async) for ever. The type check then refuses it, and a device
 * (`/dev/zero`) too, which would be read until memory runs out.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Bytes asked of the kernel per read: pseudo-files (securityfs, /proc) report size 0, so size is not trusted. */
const CHUNK_BYTES = 64 * 1024;

/**
 * Largest CA bundle or certificate file read (a system CA bundle is a few hundred KiB); a setting
 * naming a longer file names something else.
 */
export const MAX_PEM_FILE_BYTES = 4 * 1024 * 1024;

/** Which file is read, for what, and how much of it may be. */
export interface RegularFileRead {
  /** The setting, option or field that named the file; errors name it. */
  readonly setting: string;
  /** The most bytes the file may hold; a longer one is refused, never read past this. */
  readonly maxBytes: number;
  /**
   * Checks the open file's status before it is read (a private key's permissions); what it throws
   * passes through unchanged. The status is the opened file's, so it is that file that is read.
   */
  readonly check?: (info: Stats) => void;
}

/** What a reader takes: regular files only, or pipes and character devices too (`readFileOrPipe`). */
interface Accepted {
  readonly flags: number;
  readonly accepts: (info: Stats) => boolean;
  readonly what: string;
}

const REGULAR: Accepted = { flags: OPEN_FLAGS, accepts: (info) => info.isFile(), what: 'a regular file' };

/** Opened blocking, so a named FIFO waits for its writer as `cat` does; what is given is the operator's own. */
const FILE_OR_PIPE: Accepted = {
  flags: constants.O_RDONLY,
  accepts: (info) => info.isFile() || info.isFIFO() || info.isCharacterDevice(),
  what: 'a file, a pipe or a character device',
};

/** Why a file could not be read: it could not be opened or read, is not of a kind the reader takes, or is too long. */
export type FileReadFault = 'unreadable' | 'not-regular' | 'too-large';

/** A configured file that could not be read; `detail` is the message without the setting. */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';

  constructor(
    readonly file: string,
    readonly setting: string,
    readonly fault: FileReadFault,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${setting}: ${detail}`, options);
  }

  /** The errno code (`ENOENT`, `EACCES`, …) of an unreadable file, when the system gave one. */
  get code(): string | undefined {
    return (this.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/**
 * The bytes of `file`, which must be a regular file of at most `maxBytes`: opened without blocking,
 * checked on the open descriptor, refused by its size when that is already past the bound, and read
 * from it in chunks, one byte past the bound at most.
 * @throws FileReadError naming the file and the setting; whatever `check` throws.
 */
export async function readRegularFile(file: string, read: RegularFileRead): Promise<Buffer> {
  return readAccepted(file, read, REGULAR);
}

/**
 * `readRegularFile` for the tenant's own options, which may name a pipe (`--runtime-policy <(generate-policy)`)
 * or a character device: read in order, refused once past the bound (`/dev/zero` too). Opened blocking, so a
 * named FIFO waits for its writer as `cat` does; a folder or a socket is refused.
 * @throws FileReadError naming the file and the setting; whatever `check` throws.
 */
export async function readFileOrPipe(file: string, read: RegularFileRead): Promise<Buffer> {
  return readAccepted(file, read, FILE_OR_PIPE);
}

async function readAccepted(file: string, read: RegularFileRead, accepted: Accepted): Promise<Buffer> {
  return withOpenFile(file, read.setting, accepted, async (handle, info) => {
    read.check?.(info);
    requireWithinBound(file, read, info);
    return readChunks(handle, file, read, info.isFile());
  });
}

/** `readRegularFile` for synchronous callers (a config loaded before anything runs). @throws FileReadError */
export function readRegularFileSync(file: string, read: RegularFileRead): Buffer {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (cause) {
    throw unreadable(file, read.setting, cause);
  }
  try {
    let info: Stats;
    try {
      info = fstatSync(fd);
    } catch (cause) {
      throw unreadable(file, read.setting, cause);
    }
    requireAccepted(file, read.setting, info, REGULAR);
    read.check?.(info);
    requireWithinBound(file, read, info);
    return readFdSync(fd, file, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `use` on `file` opened without blocking, once its descriptor is known to be a regular file, and
 * closes it; for readers that read the open file their own way (a log read from an offset).
 * @throws FileReadError when it cannot be opened or is not a regular file; whatever `use` throws.
 */
export async function withRegularFile<T>(file: string, setting: string, use: (handle: FileHandle, info: Stats) => Promise<T>): Promise<T> {
  return withOpenFile(file, setting, REGULAR, use);
}

async function withOpenFile<T>(file: string, setting: string, accepted: Accepted, use: (handle: FileHandle, info: Stats) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(file, accepted.flags);
  } catch (cause) {
    throw unreadable(file, setting, cause);
  }
  try {
    let info: Stats;
    try {
      info = await handle.stat();
    } catch (cause) {
      throw unreadable(file, setting, cause);
    }
    requireAccepted(file, setting, info, accepted);
    return await use(handle, info);
  } finally {
    await handle.close();
  }
}

/** Reads an open file from its start, at most `maxBytes` (one more to tell a longer file). @throws FileReadError */
export async function readOpenFile(handle: FileHandle, file: string, read: RegularFileRead): Promise<Buffer> {
  return readChunks(handle, file, read, true);
}

/** `positioned`: read from offset 0 on (a regular file), or on from where the stream is (a pipe: ESPIPE). */
async function readChunks(handle: FileHandle, file: string, read: RegularFileRead, positioned: boolean): Promise<Buffer> {
  const collected = new BoundedChunks(file, read);
  for (;;) {
    const chunk = collected.nextChunk();
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(chunk, 0, chunk.length, positioned ? collected.total : null));
    } catch (cause) {
      throw unreadable(file, read.setting, cause);
    }
    const whole = collected.add(chunk, bytesRead);
    if (whole !== undefined) return whole;
  }
}

function readFdSync(fd: number, file: string, read: RegularFileRead): Buffer {
  const collected = new BoundedChunks(file, read);
  for (;;) {
    const chunk = collected.nextChunk();
    let bytesRead: number;
    try {
      bytesRead = readSync(fd, chunk, 0, chunk.length, collected.total);
    } catch (cause) {
      throw unreadable(file, read.setting, cause);
    }
    const whole = collected.add(chunk, bytesRead);
    if (whole !== undefined) return whole;
  }
}

/** The chunks read so far, never more than `maxBytes` plus the one byte that tells a longer file. */
class BoundedChunks {
  private readonly chunks: Buffer[] = [];
  total = 0;

  constructor(private readonly file: string, private readonly read: RegularFileRead) {}

  nextChunk(): Buffer {
    return Buffer.alloc(Math.min(CHUNK_BYTES, this.read.maxBytes + 1 - this.total));
  }

  /** The whole file once a read returns nothing (end of file), else undefined. @throws FileReadError past `maxBytes` */
  add(chunk: Buffer, bytesRead: number): Buffer | undefined {
    if (bytesRead === 0) return Buffer.concat(this.chunks, this.total);
    this.total += bytesRead;
    if (this.total > this.read.maxBytes) throw tooLarge(this.file, this.read);
    // A short read (a pipe gives what its writer wrote) is copied out, not kept with the rest of its chunk.
    this.chunks.push(bytesRead === chunk.length ? chunk : Buffer.from(chunk.subarray(0, bytesRead)));
    return undefined;
  }
}

function requireAccepted(file: string, setting: string, info: Stats, accepted: Accepted): void {
  if (!accepted.accepts(info)) throw new FileReadError(file, setting, 'not-regular', `${file} is not ${accepted.what}`);
}

/**
 * A regular file whose size is already past the bound is refused unread. Pseudo-files report 0 (/proc,
 * securityfs) or one page (sysfs): a bound for a sysfs attribute is at least 4096.
 */
function requireWithinBound(file: string, read: RegularFileRead, info: Stats): void {
  if (info.isFile() && info.size > read.maxBytes) throw tooLarge(file, read);
}

function unreadable(file: string, setting: string, cause: unknown): FileReadError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? String(cause);
  return new FileReadError(file, setting, 'unreadable', `cannot read ${file}: ${code}`, { cause });
}

function tooLarge(file: string, read: RegularFileRead): FileReadError {
  return new FileReadError(file, read.setting, 'too-large', `${file} holds more than the ${read.maxBytes} bytes ${read.setting} may name`);
}
