import { PythonRegexError, unsupportedFeature } from '../python-regex-error.js';
import { translateEscape, type TranslatedEscape } from './python-regex-escape.js';
import { readGroupOpening } from './python-regex-group.js';
import { ProgramCost } from './program-cost.js';

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
 * - `\Z` is RE2's `\z`; `{,n}` is `{0,n}` and `{01}` is `{1}` (RE2 reads a leading zero as text);
 *   `{` that is no quantifier is a literal; `]` first in a class is a literal; `[` and `-` inside a
 *   class are escaped unless `-` makes a range (RE2 would read `[:alpha:]`, and refuses `[a-b-c]`);
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
  /** What RE2 will spend on it, estimated before compiling (program-cost.ts). */
  readonly cost: number;
}

/** RE2's largest repeat count. */
const MAX_REPEAT = 1000;

/** What the previous token was, for Python's "nothing to repeat" and "multiple repeat". */
type Previous = 'nothing' | 'assertion' | 'item' | 'repeat';

/** One item of a bracket class: a character, or a set of them (`\w`, `\d`, `\s`). */
interface ClassItem {
  readonly source: string;
  readonly set: boolean;
}

const QUANTIFIER = /^\{(\d*)(?:(,)(\d*))?\}/;

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
  private previous: Previous = 'nothing';
  private readonly cost = new ProgramCost();

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
      cost: this.cost.total,
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
    this.cost.atom(source);
    this.previous = zeroWidth ? 'assertion' : 'item';
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
        this.previous = 'nothing';
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
        this.quantifier(c, 1, this.i - 1);
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

  /**
   * A quantifier applies to the previous atom: it must not end the literal prefix's last char.
   * `copies` is how many times RE2 writes that atom out; `at` is where the quantifier starts.
   */
  private quantifier(source: string, copies: number, at: number): void {
    if (this.previous === 'nothing' || this.previous === 'assertion') {
      this.error('nothing to repeat', at);
    }
    if (this.previous === 'repeat') {
      this.error('multiple repeat', at);
    }
    this.previous = 'repeat';
    this.cost.repeat(copies);
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
    const lo = this.repeatCount(m[1] ?? '') ?? 0;
    const hi = m[2] === undefined ? lo : this.repeatCount(m[3] ?? '');
    if (hi !== undefined && hi < lo) {
      this.error('min repeat greater than max repeat', this.i - m[0].length + 1);
    }
    this.quantifier(m[2] === undefined ? `{${lo}}` : `{${lo},${hi ?? ''}}`, hi ?? lo + 1, this.i - m[0].length);
  }

  /** A repeat count as a number (Python reads `01` as 1; RE2 would read `{01}` as text). */
  private repeatCount(digits: string): number | undefined {
    if (digits === '') {
      return undefined;
    }
    const count = Number.parseInt(digits, 10);
    if (count > MAX_REPEAT) {
      unsupportedFeature(`repeat count above ${MAX_REPEAT}`, `RE2 allows at most ${MAX_REPEAT}`, this.i);
    }
    return count;
  }

  private group(leading: boolean): void {
    const opening = readGroupOpening(this.p, this.i, this.names, leading);
    this.i = opening.end;
    if (opening.kind === 'comment') {
      this.atStart = leading;
    } else if (opening.kind === 'flags') {
      for (const flag of opening.flags) {
        this.flags.add(flag);
      }
      this.atStart = true;
    } else {
      if (opening.name !== undefined) {
        this.names.add(opening.name);
      }
      this.openGroup(opening.source, opening.capturing);
    }
  }

  private openGroup(source: string, capturing: boolean): void {
    this.out += source;
    this.cost.openGroup();
    this.previous = 'nothing';
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
    this.cost.closeGroup();
    this.previous = 'item';
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
    // A `]` first is a literal, which can start a range (`[]-a]`).
    for (let opening = true; ; opening = false) {
      if (this.p[this.i] === ']' && !opening) {
        this.i++;
        this.emit(`${source}]`);
        return;
      }
      const from = this.i;
      const first = this.classItem(start);
      if (this.p[this.i] !== '-' || this.p[this.i + 1] === ']' || this.p[this.i + 1] === undefined) {
        source += first.source;
        continue;
      }
      this.i++;
      const last = this.classItem(start);
      if (first.set || last.set) {
        this.error(`bad character range ${this.p.slice(from, this.i)}`, from);
      }
      source += `${first.source}-${last.source}`;
    }
  }

  /** A character or an escape inside a bracket class; `-`, `[` and `]` are escaped for RE2. */
  private classItem(start: number): ClassItem {
    const c = this.p[this.i];
    if (c === undefined) {
      this.error('unterminated character set', start);
    }
    if (c === '\\') {
      const escape = this.translate(true);
      return { source: escape.source, set: escape.set === true };
    }
    const char = String.fromCodePoint(this.p.codePointAt(this.i) ?? 0);
    this.i += char.length;
    return { source: '[-]'.includes(c) ? `\\${c}` : char, set: false };
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
