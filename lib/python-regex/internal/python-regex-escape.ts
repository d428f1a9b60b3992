import { PythonRegexError, unsupportedFeature } from '../python-regex-error.js';

/**
 * Backslash escapes of Python `re` patterns (Python 3 `sre_parse._escape` / `_class_escape`),
 * translated to RE2 syntax. Part of python-regex.ts's translation.
 *
 * Python 3 `str` patterns are Unicode-aware: `\d` is any decimal digit (category Nd), `\w` a letter,
 * a number or `_`, `\s` any Unicode white space; under `(?a)` they are ASCII. RE2's own `\d \w \s \b`
 * are ASCII (and its `\s` lacks `\v`), so they are spelled out here. A complemented class (`\W`, `\S`)
 * cannot be merged into a bracket class in RE2, and a Unicode word boundary (`\b` without `(?a)`)
 * cannot be written at all: both are refused.
 */

const HEX = /^[0-9a-fA-F]+$/;
const OCTAL = /^[0-7]$/;
/** Python's `str.isspace()` characters (Py_UNICODE_ISSPACE), as RE2 class items. */
const UNICODE_SPACE = '\\t-\\r\\x{1c}-\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}';
const ASCII_SPACE = '\\t-\\r ';
const UNICODE_WORD = '\\p{L}\\p{N}_';
const ASCII_WORD = '0-9A-Za-z_';
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\\x07', f: '\\f', n: '\\n', r: '\\r', t: '\\t', v: '\\v',
};

export interface EscapeContext {
  readonly inClass: boolean;
  /** `(?a)`: `\d \w \s \b` are ASCII. */
  readonly ascii: boolean;
  /** Numbers of the capturing groups closed so far (a `\n` to one of them is a back-reference). */
  readonly closed: ReadonlySet<number>;
}

export interface TranslatedEscape {
  readonly source: string;
  /** Index after the escape. */
  readonly end: number;
  /** Zero-width (`\A`, `\Z`, `\b`, `\B`). */
  readonly assertion: boolean;
  /** A set of characters (`\d`, `\w`, `\s` and their complements), which cannot end a range. */
  readonly set?: true;
}

export function codePointEscape(code: number): string {
  return `\\x{${code.toString(16)}}`;
}

function hexDigits(p: string, from: number, count: number, at: number): number {
  const digits = p.slice(from, from + count);
  if (digits.length !== count || !HEX.test(digits)) {
    throw new PythonRegexError(`incomplete escape \\${p[at + 1] ?? ''}${digits}`, at);
  }
  return Number.parseInt(digits, 16);
}

/** `\0`, octal `\ooo`, or a numbered back-reference `\n` / `\nn` (refused: RE2 has none). */
function numericEscape(p: string, at: number, ctx: EscapeContext): TranslatedEscape {
  const first = p[at + 1] ?? '';
  let end = at + 2;
  if (first === '0' || (OCTAL.test(first) && OCTAL.test(p[end] ?? '') && OCTAL.test(p[end + 1] ?? ''))) {
    let digits = first;
    while (digits.length < 3 && OCTAL.test(p[end] ?? '')) {
      digits += p[end];
      end++;
    }
    const code = Number.parseInt(digits, 8);
    if (code > 0o377) {
      throw new PythonRegexError(`octal escape value \\${digits} outside of range 0-0o377`, at);
    }
    return { source: codePointEscape(code), end, assertion: false };
  }
  if (ctx.inClass) {
    throw new PythonRegexError(`bad escape \\${first}`, at);
  }
  let number = Number(first);
  const next = p[end] ?? '';
  if (next >= '0' && next <= '9') {
    number = number * 10 + Number(next);
  }
  if (!ctx.closed.has(number)) {
    throw new PythonRegexError(`invalid group reference ${number}`, at);
  }
  return unsupportedFeature('backreference', `\\${number} refers back to a group`, at);
}

/** `\d \D \w \W \s \S \b \B`, Unicode or ASCII, inside or outside a bracket class. */
function classEscape(c: string, at: number, end: number, ctx: EscapeContext): TranslatedEscape | undefined {
  const items: Record<string, string> = {
    d: ctx.ascii ? '0-9' : '\\p{Nd}',
    w: ctx.ascii ? ASCII_WORD : UNICODE_WORD,
    s: ctx.ascii ? ASCII_SPACE : UNICODE_SPACE,
  };
  const lower = c.toLowerCase();
  const item = items[lower];
  if (item !== undefined) {
    if (c === lower) {
      return { source: ctx.inClass ? item : `[${item}]`, end, assertion: false, set: true };
    }
    if (c === 'D' && !ctx.ascii) {
      return { source: '\\P{Nd}', end, assertion: false, set: true };
    }
    if (ctx.inClass) {
      return unsupportedFeature(`\\${c} inside a character class`, 'a complemented class cannot be merged into another class', at);
    }
    return { source: `[^${item}]`, end, assertion: false };
  }
  if (c === 'b' || c === 'B') {
    if (ctx.inClass) {
      return c === 'b' ? { source: '\\x08', end, assertion: false } : undefined;
    }
    if (!ctx.ascii) {
      return unsupportedFeature(`Unicode word boundary \\${c}`, 'RE2 word boundaries are ASCII; start the pattern with (?a)', at);
    }
    return { source: `\\${c}`, end, assertion: true };
  }
  return undefined;
}

/**
 * Translates the escape starting at `p[at]` (a backslash) to RE2 syntax.
 *
 * @throws PythonRegexError for escapes Python refuses (`\q`, `\x4`) or RE2 cannot express
 *   (back-references, `\N{…}`, a Unicode `\b`).
 */
export function translateEscape(p: string, at: number, ctx: EscapeContext): TranslatedEscape {
  const c = p[at + 1];
  if (c === undefined) {
    throw new PythonRegexError('bad escape (end of pattern)', at);
  }
  if (c >= '0' && c <= '9') {
    return numericEscape(p, at, ctx);
  }
  const sizes: Record<string, number> = { x: 2, u: 4, U: 8 };
  const size = sizes[c];
  if (size !== undefined) {
    const code = hexDigits(p, at + 2, size, at);
    if (code > 0x10ffff) {
      throw new PythonRegexError(`bad escape \\U${code.toString(16)}`, at);
    }
    return { source: codePointEscape(code), end: at + 2 + size, assertion: false };
  }
  const end = at + 2;
  if (!ctx.inClass && (c === 'A' || c === 'Z')) {
    return { source: c === 'A' ? '\\A' : '\\z', end, assertion: true };
  }
  if (/[A-Za-z]/.test(c)) {
    const translated = classEscape(c, at, end, ctx);
    if (translated !== undefined) {
      return translated;
    }
    const mapped = SIMPLE_ESCAPES[c];
    if (mapped === undefined) {
      throw new PythonRegexError(`bad escape \\${c}`, at);
    }
    return { source: mapped, end, assertion: false };
  }
  // Escaped punctuation stays escaped (RE2 accepts `\` before any ASCII punctuation); any other
  // character stands for itself.
  const code = p.codePointAt(at + 1) ?? 0;
  if (/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(c)) {
    return { source: `\\${c}`, end, assertion: false };
  }
  const width = code > 0xffff ? 2 : 1;
  return { source: codePointEscape(code), end: at + 1 + width, assertion: false };
}
