import type { ImaListSlice } from './ima-list-slice.js';

/**
 * An IMA list kept in memory by the one process that writes it (an emulated node on an in-process
 * TPM), answering as `sliceImaList` does over the same text (Keylime's `ima_ml_entry` rules) without
 * opening, reading or splitting anything per request: it keeps where each line starts.
 */
export class MemoryImaList {
  private text = '';
  private lineStarts: number[] = [];

  /** Forgets every line (the log was started again). */
  clear(): void {
    this.text = '';
    this.lineStarts = [];
  }

  /** Appends complete lines, each ending in "\n" (what the writer appended to the file). */
  append(lines: string): void {
    if (lines.length > 0 && !lines.endsWith('\n')) {
      throw new Error('an IMA list grows by complete lines only');
    }
    let from = 0;
    while (from < lines.length) {
      this.lineStarts.push(this.text.length + from);
      from = lines.indexOf('\n', from) + 1;
    }
    this.text += lines;
  }

  /** Complete lines appended so far. */
  lineCount(): number {
    return this.lineStarts.length;
  }

  /** `sliceImaList(text, requested)` of the lines appended so far. */
  slice(requested: number): ImaListSlice {
    const totalLines = this.lineStarts.length;
    if (requested > totalLines) {
      return { list: this.text, entry: 0, totalLines };
    }
    const offset = requested === totalLines ? this.text.length : (this.lineStarts[requested] as number);
    return { list: this.text.slice(offset), entry: requested, totalLines };
  }
}
