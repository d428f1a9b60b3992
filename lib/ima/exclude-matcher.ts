import { checkPythonPattern, compilePythonPatterns, type LinearMatcher } from '../python-regex/linear-regex.js';
import { PythonRegexError } from '../python-regex/python-regex-error.js';
import { RuntimePolicyError } from './internal/runtime-policy-error.js';

/**
 * The `excludes` of a runtime policy: Python regular expressions, a path being excluded when any of
 * them matches at its start (Keylime joins them as `(r1)|(r2)|…` and calls `re.match`, which anchors
 * at the start but not at the end: `/usr/lib` excludes `/usr/lib64/x` too).
 *
 * The rules are translated to RE2 syntax and joined into one linear-time matcher
 * (lib/python-regex/linear-regex.ts): a pathological rule such as `(a+)+$` costs no more than any other.
 * A rule RE2 cannot express (a back-reference, a look-around …) is refused here, at policy load,
 * with the feature named — never at match time.
 *
 * Stricter than Keylime: an empty rule is refused (it would exclude every path), and each rule must
 * compile on its own (Keylime compiles only the joined pattern, where a global flag such as `(?i)`
 * in any rule but the first is an error and in the first applies to all rules).
 */
export type ExcludeMatcher = LinearMatcher;

/**
 * Compiles `rules` into one matcher. `field` names where the rules came from in error messages
 * (`excludes`, `exclude list line`).
 *
 * @throws RuntimePolicyError naming the first rule that is refused, and why.
 */
export function compileExcludes(rules: readonly string[], field = 'excludes'): ExcludeMatcher {
  rules.forEach((rule, index) => checkRule(rule, `${field}[${index}]`));
  return compilePythonPatterns(rules, 'prefix');
}

function checkRule(rule: string, where: string): void {
  if (rule.length === 0) {
    throw new RuntimePolicyError(where, 'an empty exclude rule would exclude every path');
  }
  try {
    checkPythonPattern(rule, 'prefix');
  } catch (error) {
    if (error instanceof PythonRegexError) {
      throw new RuntimePolicyError(where, `"${rule}" is not a valid regular expression: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Parses a legacy exclude list file: one rule per line, surrounding whitespace trimmed, blank lines
 * and lines starting with `#` skipped (Keylime `ima.read_excllist` / `process_exclude_list_file`).
 * Every rule is compiled so a bad one is refused here, with its line number.
 *
 * @throws RuntimePolicyError naming the line of the first rule that does not compile.
 */
export function parseExcludeList(text: string): string[] {
  const rules: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const rule = raw.trim();
    if (rule.length === 0 || rule.startsWith('#')) {
      return;
    }
    checkRule(rule, `exclude list line ${index + 1}`);
    rules.push(rule);
  });
  return rules;
}
