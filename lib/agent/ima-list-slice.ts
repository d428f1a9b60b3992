/** What the agent sends for an IMA list request: the text from line `entry` on, and that `entry`. */
export interface ImaListSlice {
  /** ASCII list lines from `entry` on, each ending in "\n"; "" when nothing is new. */
  readonly list: string;
  /** `ima_measurement_list_entry`: the index of the first line of `list`. */
  readonly entry: number;
  /** Complete lines in the whole log. */
  readonly totalLines: number;
}

/**
 * Keylime's rules for `ima_ml_entry` (rust-keylime `ima.rs: read_measurement_list`, spec §2):
 * - `requested` < number of lines: the lines from `requested` on, entry = `requested`;
 * - `requested` = number of lines: "" (nothing new), entry = `requested`;
 * - `requested` > number of lines (the log restarted, e.g. after a reboot): the whole log, entry 0,
 *   so the verifier replays from the start.
 * Only complete lines count: a trailing fragment without its "\n" (a line being written) is left
 * for the next request, so the verifier never parses half an entry.
 */
export function sliceImaList(text: string, requested: number): ImaListSlice {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  const starts = lineStarts(complete);
  const totalLines = starts.length;
  if (requested > totalLines) {
    return { list: complete, entry: 0, totalLines };
  }
  const offset = requested === totalLines ? complete.length : (starts[requested] ?? complete.length);
  return { list: complete.slice(offset), entry: requested, totalLines };
}

/** Offsets where each "\n"-terminated line of `text` begins. */
function lineStarts(text: string): number[] {
  const starts: number[] = [];
  let from = 0;
  while (from < text.length) {
    starts.push(from);
    const end = text.indexOf('\n', from);
    from = end === -1 ? text.length : end + 1;
  }
  return starts;
}
