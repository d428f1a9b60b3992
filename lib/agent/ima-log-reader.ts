import type { FileHandle } from 'node:fs/promises';
import { readEvidenceFile } from './read-evidence-file.js';
import type { ImaListSlice } from './ima-list-slice.js';

const NEWLINE = 0x0a;
/** Bytes read at a time while looking for new lines. */
const CHUNK = 64 * 1024;

/**
 * The agent's IMA log, read incrementally: `sliceImaList`'s answer (Keylime's `ima_ml_entry` rules)
 * without reading the whole log on every quote. It keeps the byte offset of every complete line it
 * has seen (as rust-keylime's `MeasurementList` keeps offsets), reads only the bytes appended since,
 * and reads from disk just the lines asked for. The log only grows while the node runs (the kernel's
 * list is append-only), so what was read stays true — unless the file is another one now (a new
 * device or inode: replaced, or a restarted emulation) or it got shorter (truncated): then
 * everything is forgotten and read again from the start. securityfs reports size 0 for the kernel's
 * list, so a size of 0 is not taken for truncation alone: the offsets are kept when the byte before
 * the end read last is still a line's "\n" (securityfs serves reads at any offset, seq_file).
 */
export class ImaLogReader {
  /** `dev:ino` of the file the offsets belong to. */
  private identity = '';
  /** Byte offset where each complete line starts. */
  private lineStarts: number[] = [];
  /** Byte offset just past the last complete line. */
  private end = 0;
  /** Reads run one at a time: two interleaved catch-ups would record the same lines twice. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string) {}

  /** The lines from `requested` on (Keylime's rules, `sliceImaList`), or undefined when the file cannot be read. */
  slice(requested: number): Promise<ImaListSlice | undefined> {
    return this.caughtUp(async (handle) => {
      const totalLines = this.lineStarts.length;
      const entry = requested > totalLines ? 0 : requested;
      const from = entry === totalLines ? this.end : (this.lineStarts[entry] as number);
      const list = Buffer.alloc(this.end - from);
      await readFully(handle, list, from);
      return { list: list.toString('utf8'), entry, totalLines };
    });
  }

  /** How many complete lines the log holds, without reading them back; undefined when the file cannot be read. */
  lineCount(): Promise<number | undefined> {
    return this.caughtUp(() => Promise.resolve(this.lineStarts.length));
  }

  /** Runs `use` on the open file once the offsets are caught up, after any earlier call (one at a time). */
  private caughtUp<T>(use: (handle: FileHandle) => Promise<T>): Promise<T | undefined> {
    const run = this.queue.then(() =>
      readEvidenceFile(this.file, async (handle) => {
        // Cleared until the read succeeds: offsets half read are not kept, the next call starts over.
        const known = this.identity;
        this.identity = '';
        const identity = await this.catchUp(handle, known);
        const result = await use(handle);
        this.identity = identity;
        return result;
      }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Whether the lines read so far can still be in a file reporting `size`: a regular file at least as
   * long, or a pseudo-file (size 0) whose byte before the end read last is still a "\n".
   */
  private async stillHolds(handle: FileHandle, size: number): Promise<boolean> {
    if (size >= this.end) return true;
    if (size !== 0) return false;
    const last = Buffer.alloc(1);
    const { bytesRead } = await handle.read(last, 0, 1, this.end - 1);
    return bytesRead === 1 && last[0] === NEWLINE;
  }

  /**
   * Reads what was appended since the offsets of file `known` (`dev:ino`) were taken; starts over when
   * the file is another one or shrank. Returns the identity of the file read.
   */
  private async catchUp(handle: FileHandle, known: string): Promise<string> {
    const stat = await handle.stat();
    const identity = `${stat.dev}:${stat.ino}`;
    if (identity !== known || !(await this.stillHolds(handle, stat.size))) {
      this.lineStarts = [];
      this.end = 0;
    }
    const chunk = Buffer.alloc(CHUNK);
    let position = this.end;
    let lineStart = this.end;
    for (;;) {
      const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
      if (bytesRead === 0) break;
      let newline = chunk.indexOf(NEWLINE, 0);
      while (newline !== -1 && newline < bytesRead) {
        this.lineStarts.push(lineStart);
        lineStart = position + newline + 1;
        newline = chunk.indexOf(NEWLINE, newline + 1);
      }
      position += bytesRead;
    }
    // A trailing line without its "\n" is being written: it is read again next time.
    this.end = lineStart;
    return identity;
  }
}

/** Fills `buffer` from `position`; a file that ended early (truncated meanwhile) throws. */
async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) throw new Error('the IMA log got shorter while it was read');
    filled += bytesRead;
  }
}
