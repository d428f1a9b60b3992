import { PythonRegexError } from './python-regex-error.js';
import { translatePythonRegex } from './python-regex.js';
import { RuntimePolicyError } from './runtime-policy-error.js';

/**
 * The `excludes` of a runtime policy: Python regular expressions, a path being excluded when any of
 * them matches at its start (Keylime joins them as `(r1)|(r2)|…` and calls `re.match`, which anchors
 * at the start but not at the end: `/usr/lib` excludes `/usr/lib64/x` too).
 *
 * All patterns with the same inline flags are joined into one sticky RegExp (back-references
 * renumbered), so a path costs one RegExp test whatever the number of rules.
 *
 * Stricter than Keylime: an empty rule is refused (it would exclude every path), and each rule must
 * compile on its own (Keylime compiles only the joined pattern, where a global flag such as `(?i)`
 * in any rule but the first is an error and in the first applies to all rules).
 */
export type ExcludeMatcher = (path: string) => boolean;

const NEVER: ExcludeMatcher = () => false;

/**
 * Compiles `rules` into one matcher. `field` names where the rules came from in error messages
 * (`excludes`, `exclude list line`).
 *
 * @throws RuntimePolicyError naming the first rule that does not compile.
 */
export function compileExcludes(rules: readonly string[], field = 'excludes'): ExcludeMatcher {
  if (rules.length === 0) {
    return NEVER;
  }
  const byFlags = new Map<string, { parts: string[]; groups: number }>();
  rules.forEach((rule, index) => {
    const where = `${field}[${index}]`;
    if (rule.length === 0) {
      throw new RuntimePolicyError(where, 'an empty exclude rule would exclude every path');
    }
    const bucket = byFlags.get(checkRule(rule, where).flags) ?? { parts: [], groups: 0 };
    const translated = translateOrThrow(rule, bucket.groups, where);
    bucket.parts.push(`(?:${translated.source})`);
    bucket.groups += translated.groups;
    byFlags.set(translated.flags, bucket);
  });
  const matchers = [...byFlags].map(([flags, bucket]) => new RegExp(bucket.parts.join('|'), `${flags}y`));
  return (path: string) => {
    for (const regex of matchers) {
      regex.lastIndex = 0;
      if (regex.test(path)) {
        return true;
      }
    }
    return false;
  };
}

/** Translates and compiles one rule on its own, so that a bad rule is reported by itself. */
function checkRule(rule: string, where: string): ReturnType<typeof translatePythonRegex> {
  const translated = translateOrThrow(rule, 0, where);
  try {
    new RegExp(translated.source, translated.flags);
  } catch (error) {
    throw new RuntimePolicyError(where, `"${rule}" is not a valid regular expression: ${(error as Error).message}`);
  }
  return translated;
}

function translateOrThrow(rule: string, groupOffset: number, where: string): ReturnType<typeof translatePythonRegex> {
  try {
    return translatePythonRegex(rule, groupOffset);
  } catch (error) {
    if (error instanceof PythonRegexError) {
      throw new RuntimePolicyError(where, `"${rule}" is not a valid regular expression: ${error.message}`);
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
