import type { FileHandle } from 'node:fs/promises';
import { withRegularFile } from '../files/regular-file.js';

/**
 * Runs `use` on `file` opened for reading, and closes it. Undefined when the file cannot be opened or
 * read, or is not a regular file: the agent then leaves that log out of its reply, as the Rust agent
 * sends what is readable. The kernel's logs (securityfs) are regular files; a FIFO or a device given as
 * a log (`--ima-log /dev/zero`) would hold a read, or grow a buffer, for ever (`withRegularFile`).
 */
export async function readEvidenceFile<T>(file: string, use: (handle: FileHandle) => Promise<T>): Promise<T | undefined> {
  try {
    return await withRegularFile(file, file, use);
  } catch {
    return undefined;
  }
}
