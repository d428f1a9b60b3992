/**
 * Characters that change how the text around them reads without showing themselves: controls (but the
 * line feed), format characters — the bidi embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069), marks, zero-width ones — the line and paragraph separators, surrogate halves, and
 * every other default-ignorable code point (the Unicode property Default_Ignorable_Code_Point: variation
 * selectors, the combining grapheme joiner, Hangul fillers, Mongolian free variation selectors, the
 * unassigned ones), which browsers draw with no width or as a blank. A node chooses the text of its evidence (an IMA path, an answer's field):
 * with U+202E in a file's name, the page showed the path of a failing file as another path; with
 * U+FE00 after `/usr/bin/ssh`, as that path.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

/**
 * `text` with every invisible character but the line feed written as JSON escapes it, `\uXXXX`
 * (lower-case hex; one above U+FFFF as its two surrogates). In JSON text, where such characters can
 * only stand inside strings, the result is JSON of the same value; in plain text the operator sees
 * that they are there. An emoji's presentation selector (U+FE0F) or joiner (U+200D) is shown so too.
 */
export function visibleText(text: string): string {
  return text.replace(INVISIBLE, (character) => (character === '\n' ? character : escapedUnits(character)));
}

/**
 * `text` that is one line (a reason, a name, a subject) with every invisible character written as
 * `visibleText` writes them, and its line feeds too: one in a node's answer started a line of the
 * node's choosing in the timeline (the carriage return is a control, always escaped).
 */
export function visibleLine(text: string): string {
  return text.replace(INVISIBLE, escapedUnits);
}

function escapedUnits(character: string): string {
  let escaped = '';
  for (let i = 0; i < character.length; i += 1) escaped += `\\u${character.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return escaped;
}
