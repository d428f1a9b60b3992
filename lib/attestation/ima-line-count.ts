/** Non-empty lines of the reply's IMA list, without splitting it into an array. */
export function countImaLines(reply: unknown): number | null {
  const list = (reply as { ima_measurement_list?: unknown } | null)?.ima_measurement_list;
  if (typeof list !== 'string') {
    return null;
  }
  let lines = 0;
  let start = 0;
  while (start < list.length) {
    let end = list.indexOf('\n', start);
    if (end === -1) {
      end = list.length;
    }
    if (list.slice(start, end).trim() !== '') {
      lines += 1;
    }
    start = end + 1;
  }
  return lines;
}
