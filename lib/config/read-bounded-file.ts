import { open } from 'node:fs/promises';

/** Keylime's largest upload (100 MiB): no verifier takes a policy beyond it, so no file an operator names need be larger. */
export const MAX_OPERATOR_FILE_BYTES = 100 * 1024 * 1024;

/** A file refused for its size, with the reason. */
export class FileTooLarge extends Error {
  constructor(file: string, maxBytes: number) {
    super(`${file} is larger than ${maxBytes} bytes`);
    this.name = 'FileTooLarge';
  }
}

const CHUNK_BYTES = 1024 * 1024;

/**
 * The bytes of `file`, at most `maxBytes`. A regular file is refused by its size before it is read; a
 * pipe (`--runtime-policy <(curl …)`) or device is read in chunks and refused once past the bound, where
 * `/dev/zero` grew a buffer to 2 GiB first. A named FIFO still waits for its writer, as `cat` does.
 * @throws FileTooLarge; the fs error when it cannot be opened or read (a folder: EISDIR)
 */
export async function readBoundedFile(file: string, maxBytes: number = MAX_OPERATOR_FILE_BYTES): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const stat = await handle.stat();
    if (stat.isFile() && stat.size > maxBytes) throw new FileTooLarge(file, maxBytes);
    const chunks: Buffer[] = [];
    let total = 0;
    // One read buffer, each read's bytes copied out: a pipe gives at most 64 KiB a read, and keeping a
    // slice of a fresh 1 MiB buffer per read held 2 GiB for a 99 MiB policy piped in.
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      total += bytesRead;
      // Also a regular file that grew after its size was read.
      if (total > maxBytes) throw new FileTooLarge(file, maxBytes);
      chunks.push(Buffer.from(chunk.subarray(0, bytesRead)));
    }
  } finally {
    await handle.close();
  }
}
