import { PythonRegexError, unsupportedFeature } from '../python-regex-error.js';

/**
 * Group openings of Python `re` patterns — `(`, `(?:`, `(?P<name>`, `(?#…)`, scoped and global
 * flags — read and checked for python-regex.ts's translation: what Python refuses is refused with
 * Python's message, what RE2 cannot express (look-around, back-references, conditionals, atomic
 * groups, `(?x)`, a scoped `(?m:…)`) with the feature named.
 */

const SCOPED_FLAGS = /^([imsx]*)(?:-([imsx]*))?:/;

/** What a group opening is; `end` is the position just after it. */
export type GroupOpening =
  /** A group: `source` is its RE2 opening; `name` a `(?P<name>` to record. */
  | { readonly kind: 'open'; readonly source: string; readonly capturing: boolean; readonly end: number; readonly name?: string }
  /** A `(?#…)` comment, already skipped. */
  | { readonly kind: 'comment'; readonly end: number }
  /** Leading global flags such as `(?ai)`. */
  | { readonly kind: 'flags'; readonly flags: string; readonly end: number };

/**
 * Reads the group opening at `start` (a `(`) of `p`. `names` are the group names defined so far;
 * `leading` is whether nothing but global flags and comments came before (global flags must).
 *
 * @throws PythonRegexError when Python would refuse the opening or RE2 cannot express it.
 */
export function readGroupOpening(p: string, start: number, names: ReadonlySet<string>, leading: boolean): GroupOpening {
  if (p[start + 1] !== '?') {
    return { kind: 'open', source: '(', capturing: true, end: start + 1 };
  }
  const rest = p.slice(start + 2);
  if (rest.startsWith(':')) {
    return { kind: 'open', source: '(?:', capturing: false, end: start + 3 };
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
      throw new PythonRegexError(`bad group name "${name}"`, start);
    }
    if (names.has(name)) {
      throw new PythonRegexError(`redefinition of group name "${name}"`, start);
    }
    return { kind: 'open', source: '(', capturing: true, end: start + 2 + end + 1, name };
  }
  if (rest.startsWith('P=')) {
    const end = rest.indexOf(')');
    const name = end < 0 ? '' : rest.slice(2, end);
    if (!names.has(name)) {
      throw new PythonRegexError(`unknown group name "${name}"`, start);
    }
    unsupportedFeature('backreference', `(?P=${name}) refers back to a group`, start);
  }
  if (rest.startsWith('#')) {
    const end = p.indexOf(')', start);
    if (end < 0) {
      throw new PythonRegexError('missing ), unterminated comment', start);
    }
    return { kind: 'comment', end: end + 1 };
  }
  if (rest.startsWith('(')) {
    unsupportedFeature('conditional group', '(?(id)yes|no) depends on a group', start);
  }
  if (rest.startsWith('>')) {
    unsupportedFeature('atomic group', 'RE2 has no atomic groups', start);
  }
  return readFlagGroup(rest, start, leading);
}

function readFlagGroup(rest: string, start: number, leading: boolean): GroupOpening {
  const scoped = SCOPED_FLAGS.exec(rest);
  if (scoped !== null && (scoped[1] !== '' || (scoped[2] ?? '') !== '')) {
    const all = `${scoped[1] ?? ''}${scoped[2] ?? ''}`;
    if (all.includes('x')) {
      unsupportedFeature('verbose pattern (?x)', 'white space and comments inside the pattern are not translated', start);
    }
    if (all.includes('m')) {
      unsupportedFeature('scoped multiline flag', '(?m:…) changes what $ means inside a group', start);
    }
    return { kind: 'open', source: `(?${scoped[0]}`, capturing: false, end: start + 2 + scoped[0].length };
  }
  const flags = /^([aiLmsux]*)\)/.exec(rest);
  if (flags === null || flags[1] === '') {
    throw new PythonRegexError(`unknown extension ?${rest.slice(0, 2)}`, start);
  }
  if (!leading) {
    throw new PythonRegexError('global flags not at the start of the expression', start);
  }
  for (const flag of flags[1] ?? '') {
    if (flag === 'x') {
      unsupportedFeature('verbose pattern (?x)', 'white space and comments inside the pattern are not translated', start);
    }
    if (flag === 'L') {
      throw new PythonRegexError("bad inline flags: cannot use 'L' flag with a str pattern", start);
    }
  }
  return { kind: 'flags', flags: flags[1] ?? '', end: start + 2 + flags[0].length };
}
