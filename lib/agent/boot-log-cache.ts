import { readOpenFile } from '../files/regular-file.js';
import { readEvidenceFile } from './read-evidence-file.js';

/** A file changed less than this long ago may change again within the same timestamp tick: it is not kept. */
const RACY_MS = 1000;

/**
 * The longest boot log sent. Firmware logs are tens of kilobytes (a few hundred with many certificates);
 * a longer file is not one, and its base64 would not fit the 64 MiB reply a verifier reads.
 */
export const MAX_BOOT_LOG_BYTES = 16 * 1024 * 1024;

/**
 * The agent's UEFI event log as the quote reply carries it (`mb_measurement_list`, base64), encoded
 * once and kept while the file stays the same: same device and inode, size, modification and change
 * times (nanoseconds). A firmware log does not change while the node runs, so every quote but the
 * first is served without reading or encoding 38 KB again. Any change of those (a replaced, rewritten,
 * touched or truncated file) reads the file again. The key is taken from the open file before it is
 * read, so a write during the read changes the key and is read next time; and, as git does with
 * "racily clean" files, a file changed in the last second is not kept at all, since a second write in
 * the same timestamp tick, with the same size, would leave the key as it was.
 */
export class BootLogCache {
  private cached: { readonly key: string; readonly base64: string } | undefined;

  constructor(private readonly file: string) {}

  /** The log in base64, or undefined when the file cannot be read or holds more than `MAX_BOOT_LOG_BYTES`. */
  base64(): Promise<string | undefined> {
    return readEvidenceFile(this.file, async (handle) => {
      const stat = await handle.stat({ bigint: true });
      const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
      if (this.cached?.key === key) {
        return this.cached.base64;
      }
      // Read, not stat'ed: securityfs reports size 0. A longer file throws, and is left out.
      const log = await readOpenFile(handle, this.file, { setting: this.file, maxBytes: MAX_BOOT_LOG_BYTES });
      const base64 = log.toString('base64');
      const changedAt = Number((stat.ctimeNs > stat.mtimeNs ? stat.ctimeNs : stat.mtimeNs) / 1_000_000n);
      this.cached = Date.now() - changedAt >= RACY_MS ? { key, base64 } : undefined;
      return base64;
    });
  }
}
