import { expect } from 'chai';
import fc from 'fast-check';
import { compileExcludes } from '../../lib/ima/exclude-matcher.js';
import { PythonRegexError } from '../../lib/ima/python-regex-error.js';
import { translatePythonRegex } from '../../lib/ima/python-regex.js';
import { RuntimePolicyError } from '../../lib/ima/runtime-policy-error.js';

/** Python `re.match(pattern, path) is not None`, as our translation computes it. */
function pyMatch(pattern: string, path: string): boolean {
  return compileExcludes([pattern])(path);
}

describe('Python regular expressions (exclude rules)', () => {
  // Each row: pattern, path, what Python 3.12 `bool(re.match(pattern, path))` gives.
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
    ['x{,2}y', 'xxy', true],
    ['x{,2}y', 'x{,2}y', false],
    ['x{}', 'x{}', true],
    ['a{2', 'a{2', true],
    ['[]]', ']', true],
    ['[^]]', ']', false],
    ['(?P<d>[0-9])(?P=d)', '77', true],
    ['(?P<d>[0-9])(?P=d)', '78', false],
    ['(a)\\1', 'aa', true],
    ['\\x41\\u0042\\103', 'ABC', true],
    ['\\U0001F600', '\u{1F600}', true],
    ['\\a', '\x07', true],
    ['[\\b]', '\b', true],
    ['(?i)/TMP', '/tmp', true],
    ['(?#comment)/a', '/a', true],
    ['a/b', 'a/b', true],
    ['\\-\\.', '-.', true],
  ];
  for (const [pattern, path, expected] of table) {
    it(`re.match(${JSON.stringify(pattern)}, ${JSON.stringify(path)}) is ${expected}`, () => {
      expect(pyMatch(pattern, path)).to.equal(expected);
    });
  }

  it('joins rules with their back-references renumbered', () => {
    const matcher = compileExcludes(['(a)\\1', '(b)(c)\\2', '(?P<x>d)(?P=x)']);
    expect(['aa', 'bcc', 'dd'].map(matcher)).to.deep.equal([true, true, true]);
    expect(['ab', 'bcb', 'de'].map(matcher)).to.deep.equal([false, false, false]);
  });

  // Python 3.11 refuses these (re.error) …
  const pythonErrors: Array<[string, RegExp]> = [
    ['(unclosed', /missing \), unterminated subpattern/],
    ['unopened)', /unbalanced parenthesis/],
    ['[abc', /unterminated character set/],
    ['\\q', /bad escape \\q/],
    ['\\x4', /incomplete escape \\x4/],
    ['(a)\\2', /invalid group reference 2/],
    ['(?P<1a>x)', /bad group name "1a"/],
    ['(?P=missing)', /unknown or open group name "missing"/],
    ['a(?i)', /global flags not at the start/],
    ['(?(1)a|b)', /unknown extension/],
    ['\\400', /outside of range/],
  ];
  // … and accepts these, which we cannot express faithfully in a JavaScript RegExp, so refuse.
  const unsupported: Array<[string, RegExp]> = [
    ['\\N{DIGIT ONE}', /bad escape \\N/],
    ['(?x) a b', /verbose patterns/],
    ['(?i:a)', /scoped inline flags/],
    ['(?>a)', /unknown extension/],
    ['a*+', /possessive quantifiers/],
  ];
  for (const [pattern, message] of [...pythonErrors, ...unsupported]) {
    it(`refuses ${JSON.stringify(pattern)}`, () => {
      expect(() => translatePythonRegex(pattern)).to.throw(PythonRegexError, message);
    });
  }

  it('refuses patterns JavaScript cannot compile either, as a RuntimePolicyError naming the rule', () => {
    for (const pattern of ['*a', 'a**', 'x{2,1}', '[z-a]']) {
      expect(() => compileExcludes(['ok', pattern]), pattern).to.throw(RuntimePolicyError, /excludes\[1\]: .* is not a valid regular expression/);
    }
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
