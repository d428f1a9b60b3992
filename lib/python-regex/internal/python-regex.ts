import { PythonRegexError, unsupportedFeature } from '../python-regex-error.js';
import { translateEscape, type TranslatedEscape } from './python-regex-escape.js';

/**
 * Translation of Python `re` patterns (a runtime policy's `excludes`, a refstate's `kernel_cmdline`)
 * into RE2 syntax, so that they run on a linear-time engine (re2js) whatever their shape: a
 * catastrophic pattern such as `(a+)+$` cannot stall the verifier. Python's meaning is kept; what
 * Python refuses is refused with Python's message, and what RE2 cannot express is refused with the
 * feature named (`PythonRegexError.unsupported`): back-references (`\1`, `(?P=name)`), look-ahead
 * and look-behind, conditionals, atomic groups, possessive quantifiers, verbose `(?x)`, `\N{…}`,
 * a Unicode `\b`, and a non-multiline `$` followed by more pattern (see `dollar` below).
 *
 * Python → RE2 differences handled:
 * - `$` (not multiline) also matches before a final `\n`: `(?:\n?\z)` when matching a prefix
 *   (`re.match`), `\z` for a full match (`re.fullmatch` must consume that newline itself). Both are
 *   exact only when nothing but `)`, `|` or another `$` follows the `$` in its branch, so anything
 *   else there (even `\Z` or `\b`, which would be tested on the other side of the newline) is refused;
 * - `\Z` is RE2's `\z`; `{,n}` is `{0,n}`; `{` that is no quantifier is a literal; `]` first in a
 *   class is a literal; `[` inside a class is escaped (RE2 would read `[:alpha:]`);
 * - Unicode `\d \w \s` (escape file); `\x \u \U` and octal escapes become `\x{…}`;
 * - `(?P<name>…)` is a plain group; leading global flags `(?i) (?m) (?s)` scope the whole pattern,
 *   `(?a)` makes the classes ASCII; scoped `(?i:…)`, `(?s:…)`, `(?-i:…)` are kept.
 */

export type MatchMode = 'prefix' | 'full';

export interface TranslatedRegex {
  /** RE2 source, flags included (`(?i:…)`), to be wrapped by the caller's anchors. */
  readonly source: string;
  /** The literal text every match starts with ('' when none is known): a cheap pre-filter. */
  readonly literalPrefix: string;
}

const QUANTIFIER = /^\{(\d*)(?:(,)(\d*))?\}/;
const SCOPED_FLAGS = /^([imsx]*)(?:-([imsx]*))?:/;

interface Frame {
  /** A `$` before the group opened: every branch starts after it. */
  readonly inherited: boolean;
  /** A non-multiline `$` occurred in the current branch of this group. */
  dollar: boolean;
  /** …in an earlier branch. */
  dollarEarlier: boolean;
}

class Translator {
  private i = 0;
  private out = '';
  private readonly flags = new Set<string>();
  private groups = 0;
  private readonly frames: Frame[] = [{ inherited: false, dollar: false, dollarEarlier: false }];
  private readonly closed = new Set<number>();
  private readonly open: number[] = [];
  private readonly names = new Set<string>();
  private atStart = true;
  private prefix = '';
  private prefixOpen = true;

  constructor(
    private readonly p: string,
    private readonly mode: MatchMode,
  ) {}

  run(): TranslatedRegex {
    while (this.i < this.p.length) {
      this.token();
    }
    if (this.open.length > 0) {
      throw new PythonRegexError('missing ), unterminated subpattern', this.p.length);
    }
    const reFlags = ['i', 'm', 's'].filter((f) => this.flags.has(f)).join('');
    const caseless = this.flags.has('i');
    return {
      source: reFlags === '' ? this.out : `(?${reFlags}:${this.out})`,
      literalPrefix: caseless || this.p.includes('|') ? '' : this.prefix,
    };
  }

  private error(message: string, at = this.i): never {
    throw new PythonRegexError(message, at);
  }

  private get frame(): Frame {
    return this.frames[this.frames.length - 1] as Frame;
  }

  /** Appends RE2 source for something that consumes input (or an assertion, `zeroWidth`). */
  private emit(source: string, zeroWidth = false, literal?: string, afterDollarOk = false): void {
    if (this.frame.dollar && !afterDollarOk) {
      unsupportedFeature('pattern after $', "Python's $ also matches before a final newline, which RE2 cannot express there", this.i);
    }
    this.out += source;
    if (literal !== undefined && this.prefixOpen && this.open.length === 0) {
      this.prefix += literal;
    } else if (!zeroWidth || this.prefix !== '' || this.open.length > 0) {
      this.prefixOpen = false;
    }
  }

  private token(): void {
    const c = this.p[this.i] ?? '';
    const leading = this.atStart;
    this.atStart = false;
    switch (c) {
      case '\\':
        this.escape();
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
      case '|':
        this.i++;
        this.frame.dollarEarlier ||= this.frame.dollar;
        this.frame.dollar = this.frame.inherited;
        this.prefixOpen = false;
        this.out += '|';
        return;
      case '^':
        this.i++;
        this.emit('^', true);
        return;
      case '$':
        this.i++;
        this.dollar();
        return;
      case '.':
        this.i++;
        this.emit('.');
        return;
      case '{':
        this.brace();
        return;
      case '*':
      case '+':
      case '?':
        this.i++;
        this.quantifier(c);
        return;
      default: {
        const code = this.p.codePointAt(this.i) ?? 0;
        const char = String.fromCodePoint(code);
        this.i += char.length;
        this.emit(/[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]/.test(char) ? `\\${char}` : char, false, char);
      }
    }
  }

  private dollar(): void {
    if (this.flags.has('m')) {
      this.emit('$', true);
      return;
    }
    this.emit(this.mode === 'prefix' ? '(?:\\n?\\z)' : '\\z', true, undefined, true);
    this.frame.dollar = true;
  }

  /** A quantifier applies to the previous atom: it must not end the literal prefix's last char. */
  private quantifier(source: string): void {
    if (this.prefixOpen && this.prefix !== '') {
      this.prefix = [...this.prefix].slice(0, -1).join('');
    }
    this.prefixOpen = false;
    this.out += source;
    const next = this.p[this.i];
    if (next === '+') {
      unsupportedFeature('possessive quantifier', 'RE2 has no possessive quantifiers', this.i);
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
      this.emit('\\{', false, '{');
      return;
    }
    this.i += m[0].length;
    const lo = m[1] === '' ? '0' : (m[1] ?? '0');
    this.quantifier(m[2] === undefined ? `{${lo}}` : `{${lo},${m[3] ?? ''}}`);
  }

  private group(leading: boolean): void {
    const start = this.i;
    if (this.p[this.i + 1] !== '?') {
      this.i++;
      this.openGroup('(', true);
      return;
    }
    const rest = this.p.slice(this.i + 2);
    if (rest.startsWith(':')) {
      this.i += 3;
      this.openGroup('(?:', false);
      return;
    }
    if (rest.startsWith('=') || rest.startsWith('!')) {
      unsupportedFeature('lookahead', `(?${rest[0] ?? ''}…) looks ahead`, start);
    }
    if (rest.startsWith('<=') || rest.startsWith('<!')) {
      unsupportedFeature('lookbehind', `(?${rest.slice(0, 2)}…) looks behind`, start);
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
      this.names.add(name);
      this.i += 2 + end + 1;
      this.openGroup('(', true);
      return;
    }
    if (rest.startsWith('P=')) {
      const end = rest.indexOf(')');
      const name = end < 0 ? '' : rest.slice(2, end);
      if (!this.names.has(name)) {
        this.error(`unknown group name "${name}"`, start);
      }
      unsupportedFeature('backreference', `(?P=${name}) refers back to a group`, start);
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
    if (rest.startsWith('(')) {
      unsupportedFeature('conditional group', '(?(id)yes|no) depends on a group', start);
    }
    if (rest.startsWith('>')) {
      unsupportedFeature('atomic group', 'RE2 has no atomic groups', start);
    }
    this.flagGroup(rest, start, leading);
  }

  private flagGroup(rest: string, start: number, leading: boolean): void {
    const scoped = SCOPED_FLAGS.exec(rest);
    if (scoped !== null && (scoped[1] !== '' || (scoped[2] ?? '') !== '')) {
      const all = `${scoped[1] ?? ''}${scoped[2] ?? ''}`;
      if (all.includes('x')) {
        unsupportedFeature('verbose pattern (?x)', 'white space and comments inside the pattern are not translated', start);
      }
      if (all.includes('m')) {
        unsupportedFeature('scoped multiline flag', '(?m:…) changes what $ means inside a group', start);
      }
      this.i += 2 + scoped[0].length;
      this.openGroup(`(?${scoped[0]}`, false);
      return;
    }
    const flags = /^([aiLmsux]*)\)/.exec(rest);
    if (flags === null || flags[1] === '') {
      this.error(`unknown extension ?${rest.slice(0, 2)}`, start);
    }
    if (!leading) {
      this.error('global flags not at the start of the expression', start);
    }
    for (const flag of flags[1] ?? '') {
      if (flag === 'x') {
        unsupportedFeature('verbose pattern (?x)', 'white space and comments inside the pattern are not translated', start);
      }
      if (flag === 'L') {
        this.error("bad inline flags: cannot use 'L' flag with a str pattern", start);
      }
      this.flags.add(flag);
    }
    this.i += 2 + flags[0].length;
    this.atStart = true;
  }

  private openGroup(source: string, capturing: boolean): void {
    this.emit(source, true, undefined, true);
    this.prefixOpen = false;
    if (capturing) {
      this.groups += 1;
    }
    this.open.push(capturing ? this.groups : 0);
    const inherited = this.frame.dollar;
    this.frames.push({ inherited, dollar: inherited, dollarEarlier: false });
  }

  private closeGroup(): void {
    const number = this.open.pop();
    if (number === undefined) {
      this.error('unbalanced parenthesis');
    }
    const frame = this.frames.pop() as Frame;
    if (number > 0) {
      this.closed.add(number);
    }
    this.i++;
    this.out += ')';
    this.frame.dollar ||= frame.dollar || frame.dollarEarlier;
  }

  private characterClass(): void {
    const start = this.i;
    let source = '[';
    this.i++;
    if (this.p[this.i] === '^') {
      this.i++;
      source += '^';
    }
    if (this.p[this.i] === ']') {
      this.i++;
      source += '\\]';
    }
    for (;;) {
      const c = this.p[this.i];
      if (c === undefined) {
        this.error('unterminated character set', start);
      }
      if (c === ']') {
        this.i++;
        this.emit(`${source}]`);
        return;
      }
      if (c === '\\') {
        const escape = this.translate(true);
        source += escape.source;
      } else {
        this.i++;
        source += c === '[' ? '\\[' : c;
      }
    }
  }

  private escape(): void {
    const at = this.i;
    const escape = this.translate(false);
    const literal = /^\\[\x21-\x7e]$/.test(escape.source) && !/[a-zA-Z0-9]/.test(escape.source[1] ?? '') ? escape.source[1] : undefined;
    this.i = at;
    this.emit(escape.source, escape.assertion, literal);
    this.i = escape.end;
  }

  private translate(inClass: boolean): TranslatedEscape {
    const escape = translateEscape(this.p, this.i, { inClass, ascii: this.flags.has('a'), closed: this.closed });
    this.i = escape.end;
    return escape;
  }
}

/**
 * Translates one Python pattern to RE2 syntax, for `re.match` (`prefix`) or `re.fullmatch` (`full`)
 * semantics; the caller adds the anchors.
 *
 * @throws PythonRegexError when Python would refuse the pattern or RE2 cannot express it.
 */
export function translatePythonRegex(pattern: string, mode: MatchMode = 'prefix'): TranslatedRegex {
  return new Translator(pattern, mode).run();
}
