import { PythonRegexError } from './python-regex-error.js';

/**
 * Backslash escapes of Python `re` patterns (Python 3 `sre_parse._escape` / `_class_escape`),
 * translated to non-unicode JavaScript RegExp source. Part of python-regex.ts's translation.
 */

const HEX = /^[0-9a-fA-F]+$/;
const OCTAL = /^[0-7]$/;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  b: '\\b', B: '\\B', d: '\\d', D: '\\D', s: '\\s', S: '\\S', w: '\\w', W: '\\W',
  a: '\\x07', f: '\\f', n: '\\n', r: '\\r', t: '\\t', v: '\\v',
};

export function codeUnitEscape(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

function hexDigits(p: string, from: number, count: number, at: number): number {
  const digits = p.slice(from, from + count);
  if (digits.length !== count || !HEX.test(digits)) {
    throw new PythonRegexError(`incomplete escape \\${p[at + 1] ?? ''}${digits}`, at);
  }
  return Number.parseInt(digits, 16);
}

/** `\0`, octal `\ooo`, or a numbered back-reference `\n` / `\nn` to a group already closed. */
function numericEscape(p: string, at: number, inClass: boolean, closed: ReadonlySet<number>, groupOffset: number) {
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
    return { source: codeUnitEscape(code), end };
  }
  if (inClass) {
    throw new PythonRegexError(`bad escape \\${first}`, at);
  }
  let number = Number(first);
  const next = p[end] ?? '';
  if (next >= '0' && next <= '9') {
    number = number * 10 + Number(next);
    end++;
  }
  if (!closed.has(number)) {
    throw new PythonRegexError(`invalid group reference ${number}`, at);
  }
  // Wrapped so that a literal digit after it cannot extend the group number in JavaScript.
  return { source: `(?:\\${number + groupOffset})`, end };
}

/**
 * Translates the escape starting at `p[at]` (a backslash). `closed` holds the numbers of the groups
 * closed so far, `groupOffset` renumbers back-references. Returns the source and the index after it.
 *
 * @throws PythonRegexError for escapes Python refuses (`\q`, `\x4`) or we cannot express (`\N{…}`).
 */
export function translateEscape(
  p: string,
  at: number,
  inClass: boolean,
  closed: ReadonlySet<number>,
  groupOffset: number,
): { source: string; end: number } {
  const c = p[at + 1];
  if (c === undefined) {
    throw new PythonRegexError('bad escape (end of pattern)', at);
  }
  if (c >= '0' && c <= '9') {
    return numericEscape(p, at, inClass, closed, groupOffset);
  }
  const sizes: Record<string, number> = { x: 2, u: 4, U: 8 };
  const size = sizes[c];
  if (size !== undefined) {
    const code = hexDigits(p, at + 2, size, at);
    const end = at + 2 + size;
    if (code > 0x10ffff) {
      throw new PythonRegexError(`bad escape \\U${code.toString(16)}`, at);
    }
    if (code <= 0xffff) {
      return { source: codeUnitEscape(code), end };
    }
    if (inClass) {
      throw new PythonRegexError('characters beyond U+FFFF are not supported in a character class', at);
    }
    const pair = String.fromCodePoint(code);
    return { source: `(?:${codeUnitEscape(pair.charCodeAt(0))}${codeUnitEscape(pair.charCodeAt(1))})`, end };
  }
  const end = at + 2;
  if (!inClass && (c === 'A' || c === 'Z')) {
    return { source: c === 'A' ? '(?<![\\s\\S])' : '(?![\\s\\S])', end };
  }
  if (/[A-Za-z]/.test(c)) {
    const mapped = SIMPLE_ESCAPES[c];
    if (mapped === undefined || (inClass && c === 'B')) {
      throw new PythonRegexError(`bad escape \\${c}`, at);
    }
    return { source: inClass && c === 'b' ? '\\x08' : mapped, end };
  }
  return { source: /[\x20-\x7e]/.test(c) ? `\\${c}` : c, end };
}
