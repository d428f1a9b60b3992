import { escapeHtml, SafeHtml } from './html.js';
import { visibleLine } from './visible-text.js';

/**
 * Code points of right-to-left bidi class (R or AL: Hebrew, Arabic, Syriac, Thaana, N'Ko and the
 * historic scripts), assigned or not: the ranges DerivedBidiClass.txt gives those classes by default,
 * which hold every such character but U+200F (a format character, escaped by `visibleText`).
 */
const RTL = '\\u0590-\\u08ff\\ufb1d-\\ufdff\\ufe70-\\ufeff\\u{10800}-\\u{10fff}\\u{1e800}-\\u{1efff}';
/**
 * A run of right-to-left letters, with the marks and spaces between them. `static/dashboard.js`
 * isolates the text of the live updates with the same pattern.
 */
export const RTL_RUN_SOURCE = `[${RTL}](?:[${RTL}\\p{M} ]*[${RTL}\\p{M}])?`;
const RTL_RUN = new RegExp(RTL_RUN_SOURCE, 'gu');

/**
 * `text` as page markup, escaped, each run of right-to-left letters in its own isolate (`<bdi>`).
 * Text a node chose (a path, an id) is shown in its own order: unisolated, such letters made the bidi
 * algorithm reorder the characters around them, and `/opt/ا/10/20` was drawn as `/opt/10/20/ا`,
 * another path. Inside its isolate a Hebrew or Arabic name still reads right to left, as it is.
 */
export function isolatedText(text: string): SafeHtml {
  // After escaping: a run holds no character that escaping writes as an entity.
  return new SafeHtml(escapeHtml(text).replace(RTL_RUN, (run) => `<bdi>${run}</bdi>`));
}

/** A field that is one line (a reason, a name), its invisible characters and line feeds escaped (`visibleLine`), then isolated. */
export function isolatedLine(text: string): SafeHtml {
  return isolatedText(visibleLine(text));
}
