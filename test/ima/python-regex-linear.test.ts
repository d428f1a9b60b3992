import { expect } from 'chai';
import fc from 'fast-check';
import { compileExcludes } from '../../lib/ima/exclude-matcher.js';
import { compilePythonPatterns } from '../../lib/python-regex/linear-regex.js';
import { PythonRegexError } from '../../lib/python-regex/python-regex-error.js';
import { translatePythonRegex } from '../../lib/python-regex/internal/python-regex.js';
import { RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';

/** Python `re.match(pattern, path) is not None`, as our translation computes it. */
function pyMatch(pattern: string, path: string): boolean {
  return compileExcludes([pattern])(path);
}

describe('Python regular expressions on a linear-time engine (exclude rules, refstate regexes)', () => {
  // Each row: pattern, path, what CPython 3.11 `bool(re.match(pattern, path))` gives.
  const table: Array<[string, string, boolean]> = [
    ['/usr/lib', '/usr/lib64/x', true],
    ['/usr/lib', 'x/usr/lib', false],
    ['.*\\.log', '/var/log/a.log', true],
    ['a.c', 'a\nc', false],
    ['a.c', 'a\rc', true],
    ['(?s)a.c', 'a\nc', true],
    ['abc$', 'abc\n', true],
    ['abc$', 'abc\nx', false],
    ['abc\\Z', 'abc\n', false],
    ['\\Aabc', 'abc', true],
    ['(?m)^b', 'a\nb', false],
    ['(?m)a$', 'a\nb', true],
    ['x{,2}y', 'xxy', true],
    ['x{,2}y', 'x{,2}y', false],
    ['x{}', 'x{}', true],
    ['a{2', 'a{2', true],
    ['[]]', ']', true],
    ['[^]]', ']', false],
    ['\\x41\\u0042\\103', 'ABC', true],
    ['\\U0001F600', '\u{1F600}', true],
    ['\\a', '\x07', true],
    ['[\\b]', '\b', true],
    ['(?i)/TMP', '/tmp', true],
    ['(?#comment)/a', '/a', true],
    ['a/b', 'a/b', true],
    ['\\-\\.', '-.', true],
    ['a$|b', 'b', true],
    ['(a$)|b', 'a\n', true],
    ['\\d', '\u0663', true],
    ['(?a)\\d', '\u0663', false],
    ['\\w', 'é', true],
    ['(?a)\\w', 'é', false],
    ['[\\s]', '\x1c', true],
    ['\\s', '\x0b', true],
    ['\\S', '\x0b', false],
    ['\\D', 'a', true],
    ['[\\d.]', '.', true],
    ['(?i:A)b', 'ab', true],
    ['(?i:A)b', 'aB', false],
    ['(?-i:a)', 'a', true],
    ['[[:alpha:]]', ':]', true],
    ['[[:alpha:]]', 'a', false],
    ['(?s:.)', '\n', true],
    ['.', '\n', false],
    ['(?a)\\bx', 'x', true],
    // Repeat counts with leading zeros are counts (RE2 would read `{01}` as text).
    ['xa{02}', 'xaa', true],
    ['xa{02}', 'xa{02}', false],
    ['a{00}b', 'b', true],
    ['a{00}b', 'a{00}b', false],
    ['xa{1,02}y', 'xaay', true],
    ['xa{1,02}y', 'xa{1,02}y', false],
    ['x{0001,0002}$', 'xx', true],
    // `-` between a range and another item, or first, is a literal.
    ['[a-b-c]', '-', true],
    ['[a-b-c]', 'c', true],
    ['[--a]', '-', true],
    ['[--a]', 'b', false],
    ['[\\w-]', '-', true],
    // A `]` first is a literal that can start a range, as in Python (`]` to `a` holds `_`, not `-`).
    ['[]-a]', '_', true],
    ['[]-a]', '-', false],
    ['[^]-a]', '-', true],
    ['[^]-a]', '_', false],
    ['[]-]]', '-]', true],
  ];
  for (const [pattern, path, expected] of table) {
    it(`re.match(${JSON.stringify(pattern)}, ${JSON.stringify(path)}) is ${expected}`, () => {
      expect(pyMatch(pattern, path)).to.equal(expected);
    });
  }

  it('re.fullmatch semantics for refstate regexes: $ does not leave a final newline unconsumed', () => {
    const full = (pattern: string, text: string) => compilePythonPatterns([pattern], 'full')(text);
    expect(full('abc$', 'abc')).to.equal(true);
    expect(full('abc$', 'abc\n')).to.equal(false); // CPython: re.fullmatch('abc$', 'abc\n') is None
    expect(full('a|b', 'b')).to.equal(true);
    expect(full('ab', 'abc')).to.equal(false);
  });

  it('joins rules into one matcher, with and without literal prefixes', () => {
    const prefixed = compileExcludes(['/tmp/', '/var/log/.*\\.log$', '/proc/']);
    expect(['/tmp/x', '/var/log/a.log', '/proc/1', '/usr/bin/x', '/var/log/a.txt'].map((p) => prefixed(p))).to.deep.equal([true, true, true, false, false]);
    const mixed = compileExcludes(['/tmp/', '(?i)/OPT/', '.*\\.pyc']);
    expect(['/tmp/x', '/opt/y', '/a/b.pyc', '/usr/bin/x'].map((p) => mixed(p))).to.deep.equal([true, true, true, false]);
  });

  // Python refuses these (re.error) …
  const pythonErrors: Array<[string, RegExp]> = [
    ['(unclosed', /missing \), unterminated subpattern/],
    ['unopened)', /unbalanced parenthesis/],
    ['[abc', /unterminated character set/],
    ['\\q', /bad escape \\q/],
    ['\\x4', /incomplete escape \\x4/],
    ['(a)\\2', /invalid group reference 2/],
    ['(?P<1a>x)', /bad group name "1a"/],
    ['(?P=missing)', /unknown group name "missing"/],
    ['a(?i)', /global flags not at the start/],
    ['\\400', /outside of range/],
    // A set cannot end a range (RE2 would read `[\w-~]` as `\w` plus `_-~`) …
    ['[\\w-~]', /bad character range \\w-~ at position 1/],
    ['[\\w-\\U0010ffff]', /bad character range \\w-/],
    ['(?a)[\\s-~]', /bad character range \\s-~ at position 5/],
    ['[\\d-z]', /bad character range \\d-z at position 1/],
    ['[a-\\w]', /bad character range a-\\w at position 1/],
    // … and an assertion cannot be repeated, nor a repeat (RE2 would accept `$*` and `^*`).
    ['/tmp/a$*', /nothing to repeat at position 7/],
    ['^*/tmp', /nothing to repeat at position 1/],
    ['\\A*', /nothing to repeat at position 2/],
    ['(?a)\\b?', /nothing to repeat at position 6/],
    ['\\Z?', /nothing to repeat at position 2/],
    ['(?i)*', /nothing to repeat at position 4/],
    ['^{1}', /nothing to repeat at position 1/],
    ['a{2}{3}', /multiple repeat at position 4/],
    ['a**', /multiple repeat at position 2/],
    ['x{2,1}', /min repeat greater than max repeat at position 2/],
  ];
  for (const [pattern, message] of pythonErrors) {
    it(`refuses ${JSON.stringify(pattern)} as Python does`, () => {
      expect(() => translatePythonRegex(pattern)).to.throw(PythonRegexError, message).with.property('unsupported', undefined);
    });
  }

  // … and accepts these, which RE2 cannot express: refused with the feature named.
  const unsupported: Array<[string, string]> = [
    ['(a)\\1', 'backreference'],
    ['(?P<d>[0-9])(?P=d)', 'backreference'],
    ['/usr(?=/lib)', 'lookahead'],
    ['/usr(?!/lib)', 'lookahead'],
    ['(?<=/)lib', 'lookbehind'],
    ['(?<!/)lib', 'lookbehind'],
    ['(a)?(?(1)b|c)', 'conditional group'],
    ['(?>a)', 'atomic group'],
    ['a*+', 'possessive quantifier'],
    ['(?x) a b', 'verbose pattern (?x)'],
    ['\\bword', 'Unicode word boundary \\b'],
    ['[\\W]', '\\W inside a character class'],
    ['(?m:a$)', 'scoped multiline flag'],
    ['a$\\n', 'pattern after $'],
    ['(a$)\\Z', 'pattern after $'],
  ];
  for (const [pattern, feature] of unsupported) {
    it(`refuses ${JSON.stringify(pattern)}, naming "${feature}"`, () => {
      expect(() => translatePythonRegex(pattern)).to.throw(PythonRegexError, feature).with.property('unsupported', feature);
      expect(() => compileExcludes(['/ok/', pattern])).to.throw(RuntimePolicyError, `excludes[1]: "${pattern}" is not a valid regular expression: ${feature}`);
    });
  }

  it('refuses patterns RE2 cannot compile either, as a RuntimePolicyError naming the rule', () => {
    for (const pattern of ['*a', 'a**', 'x{2,1}', '[z-a]', 'a{1001}']) {
      expect(() => compileExcludes(['ok', pattern]), pattern).to.throw(RuntimePolicyError, /excludes\[1\]: .* is not a valid regular expression/);
    }
  });

  it('runs a catastrophic-backtracking rule in linear time: (a+)+$ against / + 28 a + ! (and 10,000 a)', () => {
    const matcher = compileExcludes(['/(a+)+$', '(x+x+)+y']);
    expect(matcher(`/${'a'.repeat(28)}!`)).to.equal(false);
    expect(matcher(`/${'a'.repeat(10_000)}!`)).to.equal(false);
    expect(matcher(`${'x'.repeat(10_000)}`)).to.equal(false);
    expect(matcher(`/${'a'.repeat(28)}`)).to.equal(true);
  });

  it('never throws anything but RuntimePolicyError, and never hangs on short random patterns', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (pattern) => {
        try {
          compileExcludes([pattern])('/usr/lib/x86_64-linux-gnu/libc.so.6');
        } catch (error) {
          expect(error).to.be.instanceOf(RuntimePolicyError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
