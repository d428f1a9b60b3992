import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * Runs `use` on `file` opened for reading, and closes it. Undefined when the file cannot be opened or
 * read, or is not a regular file: the agent then leaves that log out of its reply, as the Rust agent
 * sends what is readable. The kernel's logs (securityfs) are regular files; a FIFO or a device given as
 * a log (`--ima-log /dev/zero`) would hold a read, or grow a buffer, for ever. Opened without blocking,
 * so a FIFO nobody writes to is refused at once instead of holding the open.
 */
export async function readEvidenceFile<T>(file: string, use: (handle: FileHandle) => Promise<T>): Promise<T | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return (await handle.stat()).isFile() ? await use(handle) : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
