/**
 * An estimate of what RE2 will spend on a translated pattern, counted while translating, before
 * RE2 sees it: compiling and matching both grow with the program RE2 builds, where a counted repeat
 * `x{n}` is n copies of `x` and a Unicode class (`\p{L}`, from Python's `\w` or `\d`) costs far more
 * than a literal to parse and to match. A unit is about one microsecond of re2js 2.10 compiling,
 * where the weights were measured: a pattern costs ~100 as one more alternative of the joined
 * program, a Unicode property ~200 to parse, and a Unicode class as long to match as ~400 literals.
 */
const PATTERN_BASE = 100;
const UNICODE_CLASS_COPY = 400;
const UNICODE_CLASS_PARSE = 200;
const UNICODE_PROPERTY = /\\[pP]\{/g;

export class ProgramCost {
  /** The weight of each open group's content so far; the first entry is the whole pattern. */
  private readonly open: number[] = [PATTERN_BASE];
  /** The weight of the last atom or group, which a quantifier copies. */
  private last = 0;
  /** Paid once per occurrence in the source, whatever repeats it (RE2 parses a class once). */
  private parsing = 0;

  get total(): number {
    return (this.open[0] ?? 0) + this.parsing;
  }

  /** Something that matches one character, or an assertion; `source` is its RE2 translation. */
  atom(source: string): void {
    const properties = source.match(UNICODE_PROPERTY)?.length ?? 0;
    this.parsing += properties * UNICODE_CLASS_PARSE;
    this.add(properties > 0 ? UNICODE_CLASS_COPY : 1);
  }

  /** A quantifier on the last atom or group: RE2 expands `x{n,m}` into m copies of `x`. */
  repeat(copies: number): void {
    const extra = this.last * (Math.max(copies, 1) - 1);
    this.open[this.open.length - 1] = this.top + extra;
    this.last += extra;
  }

  openGroup(): void {
    this.open.push(0);
    this.last = 0;
  }

  closeGroup(): void {
    const group = this.open.pop() ?? 0;
    this.add(group);
  }

  private get top(): number {
    return this.open[this.open.length - 1] ?? 0;
  }

  private add(weight: number): void {
    this.open[this.open.length - 1] = this.top + weight;
    this.last = weight;
  }
}
