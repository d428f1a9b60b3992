import { open, type FileHandle } from 'node:fs/promises';

/**
 * Runs `use` on `file` opened for reading, and closes it. Undefined when the file cannot be opened or
 * read: the agent then leaves that log out of its reply, as the Rust agent sends what is readable.
 */
export async function readEvidenceFile<T>(file: string, use: (handle: FileHandle) => Promise<T>): Promise<T | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return await use(handle);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}
