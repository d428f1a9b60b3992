/**
 * `text` without its trailing NULs. Not `replace(/\0+$/, '')`: a backtracking engine tries that from
 * every NUL of a run that does not end the text, so a log string of many NULs followed by one other
 * character cost time quadratic in its length (one 100 KB event took 18 to 28 s).
 */
export function withoutTrailingNuls(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0) {
    end--;
  }
  return text.slice(0, end);
}
