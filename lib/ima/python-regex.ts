import { PythonRegexError } from './python-regex-error.js';
import { translateEscape } from './python-regex-escape.js';

/**
 * Translation of Python `re` patterns (the exclude rules of a Keylime runtime policy) into
 * JavaScript RegExp source with the same meaning, refusing what Python refuses and what we cannot
 * express faithfully. Keylime applies excludes with `re.match`: anchored at the start of the path,
 * not at its end; the caller adds the start anchor (the sticky flag), not this module.
 *
 * Differences handled (Python 3 `re`, non-unicode JS RegExp):
 * - `.` excludes only `\n` in Python (JS also excludes `\r`, U+2028/9) → `[^\n]`, or `[\s\S]` under `(?s)`;
 * - `$` also matches before a final `\n` in Python → `(?=\n?(?![\s\S]))`; `\A` / `\Z` → look-arounds;
 * - `{,n}` means `{0,n}` in Python (a literal in JS); a `{` that is not a quantifier is a literal in both;
 * - `]` first in a class is a literal in Python; `\a`, `\U0001F600`, octal escapes are rewritten;
 * - `(?P<name>…)` / `(?P=name)` become plain groups and numbered back-references (so several
 *   patterns can be joined in one RegExp), renumbered by `groupOffset`;
 * - leading global flags `(?i)`, `(?m)`, `(?s)`, `(?a)`, `(?u)` become RegExp flags.
 * Refused with a clear error: unknown escapes of ASCII letters (a Python error), `\N{…}`, verbose
 * `(?x)`, scoped flags `(?i:…)`, conditionals `(?(1)…)`, atomic groups and possessive quantifiers.
 * Not reproduced: Python's `\d`/`\w`/`\s` also match non-ASCII digits/letters/spaces; Python refuses
 * variable-width look-behinds, which JavaScript accepts.
 */

export interface TranslatedRegex {
  /** JavaScript RegExp source. */
  readonly source: string;
  /** RegExp flags from leading inline flags (`i`, `m`, `s`), sorted. */
  readonly flags: string;
  /** Number of capturing groups in the pattern. */
  readonly groups: number;
}

const QUANTIFIER = /^\{(\d*)(?:(,)(\d*))?\}/;
class Translator {
  private i = 0;
  private out = '';
  private flags = new Set<string>();
  private groups = 0;
  private readonly open: Array<{ capturing: boolean; number: number }> = [];
  private readonly closed = new Set<number>();
  private readonly names = new Map<string, number>();
  private atStart = true;

  constructor(
    private readonly p: string,
    private readonly groupOffset: number,
  ) {}

  run(): TranslatedRegex {
    while (this.i < this.p.length) {
      this.token();
    }
    if (this.open.length > 0) {
      throw new PythonRegexError('missing ), unterminated subpattern', this.p.length);
    }
    return { source: this.out, flags: [...this.flags].sort().join(''), groups: this.groups };
  }

  private error(message: string, at = this.i): never {
    throw new PythonRegexError(message, at);
  }

  private token(): void {
    const c = this.p[this.i] ?? '';
    const leading = this.atStart;
    this.atStart = false;
    switch (c) {
      case '\\':
        this.out += this.escape(false);
        return;
      case '[':
        this.characterClass();
        return;
      case '(':
        this.group(leading);
        return;
      case ')':
        this.closeGroup();
        return;
      case '.':
        this.i++;
        this.out += this.flags.has('s') ? '[\\s\\S]' : '[^\\n]';
        return;
      case '$':
        this.i++;
        this.out += this.flags.has('m') ? '(?=\\n|(?![\\s\\S]))' : '(?=\\n?(?![\\s\\S]))';
        return;
      case '{':
        this.brace();
        return;
      case '}':
        this.i++;
        this.out += '\\}';
        return;
      case '*':
      case '+':
      case '?':
        this.i++;
        this.out += c;
        this.refusePossessive();
        return;
      default:
        this.i++;
        this.out += c === '/' ? '\\/' : c;
    }
  }

  private refusePossessive(): void {
    const next = this.p[this.i];
    if (next === '+') {
      this.error('possessive quantifiers are not supported');
    }
    if (next === '?') {
      this.i++;
      this.out += '?';
    }
  }

  private brace(): void {
    const m = QUANTIFIER.exec(this.p.slice(this.i));
    if (m === null || (m[1] === '' && m[2] === undefined)) {
      this.i++;
      this.out += '\\{';
      return;
    }
    this.i += m[0].length;
    const lo = m[1] === '' ? '0' : (m[1] ?? '0');
    this.out += m[2] === undefined ? `{${lo}}` : `{${lo},${m[3] ?? ''}}`;
    this.refusePossessive();
  }

  private group(leading: boolean): void {
    const start = this.i;
    if (this.p[this.i + 1] !== '?') {
      this.i++;
      this.openCapturing();
      return;
    }
    const rest = this.p.slice(this.i + 2);
    if (rest.startsWith(':') || rest.startsWith('=') || rest.startsWith('!')) {
      this.i += 3;
      this.out += `(?${rest[0] ?? ''}`;
      this.open.push({ capturing: false, number: 0 });
      return;
    }
    if (rest.startsWith('<=') || rest.startsWith('<!')) {
      this.i += 4;
      this.out += `(?${rest.slice(0, 2)}`;
      this.open.push({ capturing: false, number: 0 });
      return;
    }
    if (rest.startsWith('P<')) {
      const end = rest.indexOf('>');
      const name = end < 0 ? '' : rest.slice(2, end);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        this.error(`bad group name "${name}"`, start);
      }
      if (this.names.has(name)) {
        this.error(`redefinition of group name "${name}"`, start);
      }
      this.i += 2 + end + 1;
      this.names.set(name, this.groups + 1);
      this.openCapturing();
      return;
    }
    if (rest.startsWith('P=')) {
      const end = rest.indexOf(')');
      const name = end < 0 ? '' : rest.slice(2, end);
      const number = this.names.get(name);
      if (number === undefined || !this.closed.has(number)) {
        this.error(`unknown or open group name "${name}"`, start);
      }
      this.i += 2 + end + 1;
      this.out += `(?:\\${number + this.groupOffset})`;
      return;
    }
    if (rest.startsWith('#')) {
      const end = this.p.indexOf(')', this.i);
      if (end < 0) {
        this.error('missing ), unterminated comment', start);
      }
      this.i = end + 1;
      this.atStart = leading;
      return;
    }
    const flags = /^([aiLmsux]*)(-[imsx]*)?([:)])/.exec(rest);
    if (flags === null) {
      this.error(`unknown extension ?${rest.slice(0, 2)}`, start);
    }
    if (flags[3] === ':' || flags[2] !== undefined) {
      this.error('scoped inline flags (?flags:...) are not supported', start);
    }
    if (!leading) {
      this.error('global flags not at the start of the expression', start);
    }
    for (const flag of flags[1] ?? '') {
      if (flag === 'x') {
        this.error('verbose patterns (?x) are not supported', start);
      }
      if (flag === 'L') {
        this.error("bad inline flags: cannot use 'L' flag with a str pattern", start);
      }
      if (flag === 'i' || flag === 'm' || flag === 's') {
        this.flags.add(flag);
      }
    }
    this.i += 2 + flags[0].length;
    this.atStart = true;
  }

  private openCapturing(): void {
    this.groups += 1;
    this.open.push({ capturing: true, number: this.groups });
    this.out += '(';
  }

  private closeGroup(): void {
    const group = this.open.pop();
    if (group === undefined) {
      this.error('unbalanced parenthesis');
    }
    if (group.capturing) {
      this.closed.add(group.number);
    }
    this.i++;
    this.out += ')';
  }

  private characterClass(): void {
    const start = this.i;
    this.i++;
    this.out += '[';
    if (this.p[this.i] === '^') {
      this.i++;
      this.out += '^';
    }
    if (this.p[this.i] === ']') {
      this.i++;
      this.out += '\\]';
    }
    for (;;) {
      const c = this.p[this.i];
      if (c === undefined) {
        this.error('unterminated character set', start);
      }
      if (c === ']') {
        this.i++;
        this.out += ']';
        return;
      }
      if (c === '\\') {
        this.out += this.escape(true);
      } else {
        this.i++;
        this.out += c === '[' ? '\\[' : c;
      }
    }
  }

  /** Translates the escape at `this.i` (a backslash) and advances past it. */
  private escape(inClass: boolean): string {
    const { source, end } = translateEscape(this.p, this.i, inClass, this.closed, this.groupOffset);
    this.i = end;
    return source;
  }
}

/**
 * Translates one Python pattern. `groupOffset` renumbers its back-references for when it is joined
 * after other patterns with `groupOffset` capturing groups in total.
 *
 * @throws PythonRegexError when Python would refuse the pattern or we cannot express it.
 */
export function translatePythonRegex(pattern: string, groupOffset = 0): TranslatedRegex {
  return new Translator(pattern, groupOffset).run();
}
