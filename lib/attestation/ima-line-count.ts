import type { Stepwise } from '../ima/stepwise.js';

/** Lines of the list counted between two pauses: a few hundred µs of work. */
const LINES_PER_STEP = 4096;

/**
 * Non-empty lines of the reply's IMA list, without splitting it into an array; pauses every few
 * thousand lines (`Stepwise`): a hostile list may hold hundreds of thousands.
 */
export function* countImaLines(reply: unknown): Stepwise<number | null> {
  const list = (reply as { ima_measurement_list?: unknown } | null)?.ima_measurement_list;
  if (typeof list !== 'string') {
    return null;
  }
  let lines = 0;
  let start = 0;
  for (let walked = 1; start < list.length; walked += 1) {
    let end = list.indexOf('\n', start);
    if (end === -1) {
      end = list.length;
    }
    if (list.slice(start, end).trim() !== '') {
      lines += 1;
    }
    start = end + 1;
    if (walked % LINES_PER_STEP === 0) yield;
  }
  return lines;
}
