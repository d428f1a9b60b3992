import { compilePythonPatterns, type LinearMatcher } from '../python-regex/linear-regex.js';
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
 * Stricter than Keylime: an empty rule is refused (it would exclude every path), the rules must fit
 * the engine's budget (lib/python-regex/linear-regex.ts), and each rule must compile on its own (Keylime compiles only the joined pattern, where a global flag such as `(?i)`
 * in any rule but the first is an error and in the first applies to all rules).
 */
export type ExcludeMatcher = LinearMatcher;

/**
 * The matcher last compiled for a rules array, with a copy of the rules it was compiled from:
 * `parseRuntimePolicy` compiles the excludes to validate them and `compileRuntimePolicy` needs them
 * again, so the second call reuses the first's work (the copy catches an array changed between).
 */
const compiled = new WeakMap<readonly string[], { readonly rules: readonly string[]; readonly matcher: ExcludeMatcher }>();

/**
 * Compiles `rules` into one matcher, once: RE2 compiles them together, and only when a rule is
 * refused is it named. `field` names where the rules came from in error messages (`excludes`).
 *
 * @throws RuntimePolicyError naming the first rule that is refused, and why (including a rule, or
 *   the rules up to it, over the linear-time engine's budget).
 */
export function compileExcludes(rules: readonly string[], field = 'excludes'): ExcludeMatcher {
  const cached = compiled.get(rules);
  if (cached !== undefined && sameRules(cached.rules, rules)) {
    return cached.matcher;
  }
  const matcher = compileRules(rules, (index) => `${field}[${index}]`);
  compiled.set(rules, { rules: [...rules], matcher });
  return matcher;
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((rule, index) => rule === b[index]);
}

function compileRules(rules: readonly string[], where: (index: number) => string): ExcludeMatcher {
  rules.forEach((rule, index) => {
    if (rule.length === 0) {
      throw new RuntimePolicyError(where(index), 'an empty exclude rule would exclude every path');
    }
  });
  return compilePythonPatterns(rules, 'prefix', (index, error) => {
    throw new RuntimePolicyError(where(index), `"${rules[index] ?? ''}" is not a valid regular expression: ${error.message}`, { cause: error });
  });
}

/**
 * Parses a legacy exclude list file: one rule per line, surrounding whitespace trimmed, blank lines
 * and lines starting with `#` skipped (Keylime `ima.read_excllist` / `process_exclude_list_file`).
 * The rules are compiled so a bad one is refused here, with its line number.
 *
 * @throws RuntimePolicyError naming the line of the first rule that does not compile.
 */
export function parseExcludeList(text: string): string[] {
  const rules: string[] = [];
  const lines: number[] = [];
  text.split('\n').forEach((raw, index) => {
    const rule = raw.trim();
    if (rule.length > 0 && !rule.startsWith('#')) {
      rules.push(rule);
      lines.push(index + 1);
    }
  });
  compileRules(rules, (index) => `exclude list line ${lines[index] ?? 0}`);
  return rules;
}
