import { RE2JS, RE2JSException } from 're2js';
import { PythonRegexError } from './python-regex-error.js';
import { translatePythonRegex, type MatchMode } from './internal/python-regex.js';

/**
 * Python patterns compiled for a linear-time engine (re2js, RE2 semantics): matching costs
 * O(pattern × text) whatever the pattern, so a policy or a request cannot make the verifier
 * backtrack for hours. Compile once (at policy load); `test` never throws.
 */
export type LinearMatcher = (text: string) => boolean;

const NEVER: LinearMatcher = () => false;

/**
 * Translates and compiles one pattern on its own, so a bad one is reported by itself.
 *
 * @throws PythonRegexError when Python refuses it, RE2 cannot express it (`unsupported` names the
 *   feature) or RE2 refuses the translation (e.g. a repeat count above 1000).
 */
export function checkPythonPattern(pattern: string, mode: MatchMode): ReturnType<typeof translatePythonRegex> {
  const translated = translatePythonRegex(pattern, mode);
  compile(anchored([translated.source], mode));
  return translated;
}

/**
 * One matcher for several patterns: true when any of them matches at the start of the text
 * (`prefix`, Python's `re.match`) or matches the whole text (`full`, `re.fullmatch`). When every
 * pattern starts with literal text, a text that starts with none of those is refused without
 * running the engine (a path is usually checked against a handful of directory prefixes).
 *
 * @throws PythonRegexError as `checkPythonPattern`.
 */
export function compilePythonPatterns(patterns: readonly string[], mode: MatchMode): LinearMatcher {
  if (patterns.length === 0) {
    return NEVER;
  }
  const translated = patterns.map((pattern) => checkPythonPattern(pattern, mode));
  const regex = compile(anchored(translated.map((t) => t.source), mode));
  const prefixes = translated.map((t) => t.literalPrefix);
  if (prefixes.includes('')) {
    return (text) => regex.test(text);
  }
  return (text) => {
    for (const prefix of prefixes) {
      if (text.startsWith(prefix)) {
        return regex.test(text);
      }
    }
    return false;
  };
}

/** `^` is RE2's start of text here: no multiline flag applies outside the patterns' own groups. */
function anchored(sources: readonly string[], mode: MatchMode): string {
  const body = sources.map((s) => `(?:${s})`).join('|');
  return mode === 'prefix' ? `^(?:${body})` : `^(?:${body})\\z`;
}

function compile(source: string): RE2JS {
  try {
    return RE2JS.compile(source);
  } catch (error) {
    if (error instanceof RE2JSException) {
      throw new PythonRegexError(`not accepted by RE2: ${error.message}`, 0);
    }
    throw error;
  }
}
