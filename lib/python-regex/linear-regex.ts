import { RE2JS, RE2JSException } from 're2js';
import type { MatchAllowance } from './match-allowance.js';
import { PythonRegexError } from './python-regex-error.js';
import { translatePythonRegex, type MatchMode, type TranslatedRegex } from './internal/python-regex.js';

/**
 * Python patterns compiled for a linear-time engine (re2js, RE2 semantics): matching costs
 * O(pattern × text) whatever the pattern, so a policy or a request cannot make the verifier
 * backtrack for hours. Compile once (at policy load); `test` never throws.
 *
 * "Pattern" is then the size of the program RE2 builds, which a short pattern can make huge
 * (`[\w]{1000}` is a thousand Unicode classes): every pattern, and every set compiled together,
 * has a budget (`PATTERN_BUDGET`, `PATTERNS_BUDGET`, units of internal/program-cost.ts) checked on
 * the translation, before RE2 spends anything on it. A budget bounds one program, not how many
 * texts a request runs it on: a caller that runs a matcher for an untrusted request passes a
 * `MatchAllowance`, checked before each engine run.
 */
export type LinearMatcher = (text: string, allowance?: MatchAllowance) => boolean;

/** One pattern's budget: repeats such as `[^/]{1000}` or `\w{1,100}`, dozens of Unicode classes. */
export const PATTERN_BUDGET = 50_000;
/**
 * The budget of patterns compiled together (a policy's excludes): over a thousand literal paths or
 * two thousand short rules; re2js compiles that in about a second. It does not bound matching:
 * rules that keep many states live (`[^X]*.{1000}b`) can take seconds per path, which is what a
 * `MatchAllowance` bounds (docs/ima.md).
 */
export const PATTERNS_BUDGET = 250_000;

/** Called with the index of the refused pattern and why; it throws the caller's own error. */
export type OnRefused = (index: number, error: PythonRegexError) => never;

const NEVER: LinearMatcher = () => false;

const rethrow: OnRefused = (_index, error) => {
  throw error;
};

/**
 * Translates and compiles one pattern on its own, so a bad one is reported by itself.
 *
 * @throws PythonRegexError when Python refuses it, RE2 cannot express it (`unsupported` names the
 *   feature), it is over `PATTERN_BUDGET`, or RE2 refuses the translation.
 */
export function checkPythonPattern(pattern: string, mode: MatchMode): TranslatedRegex {
  const translated = translateWithinBudget(pattern, mode);
  compile(anchored([translated.source], mode));
  return translated;
}

/**
 * Translates one pattern and checks it against `PATTERN_BUDGET`, without compiling it.
 *
 * @throws PythonRegexError as `checkPythonPattern`, except for what only RE2's compiler refuses.
 */
export function translateWithinBudget(pattern: string, mode: MatchMode): TranslatedRegex {
  const translated = translatePythonRegex(pattern, mode);
  if (translated.cost > PATTERN_BUDGET) {
    throw new PythonRegexError(`too costly for the linear-time engine: about ${translated.cost} units, over ${PATTERN_BUDGET}`, 0);
  }
  return translated;
}

/**
 * One matcher for several patterns: true when any of them matches at the start of the text
 * (`prefix`, Python's `re.match`) or matches the whole text (`full`, `re.fullmatch`). When every
 * pattern starts with literal text, a text that starts with none of those is refused without
 * running the engine (a path is usually checked against a handful of directory prefixes).
 * RE2 compiles the patterns once, together; only when that fails is each compiled alone, to name
 * the one refused.
 *
 * @throws PythonRegexError as `checkPythonPattern`, or when the patterns together are over
 *   `PATTERNS_BUDGET`; or whatever `onRefused` throws, given the refused pattern's index.
 */
export function compilePythonPatterns(patterns: readonly string[], mode: MatchMode, onRefused: OnRefused = rethrow): LinearMatcher {
  if (patterns.length === 0) {
    return NEVER;
  }
  let total = 0;
  const translated = patterns.map((pattern, index) => {
    const t = refusedAs(index, onRefused, () => translateWithinBudget(pattern, mode));
    total += t.cost;
    if (total > PATTERNS_BUDGET) {
      onRefused(index, new PythonRegexError(`the patterns up to this one are too costly together: over ${PATTERNS_BUDGET} units`, 0));
    }
    return t;
  });
  const regex = compileTogether(translated, mode, onRefused);
  const run: LinearMatcher = (text, allowance) =>
    allowance === undefined ? regex.test(text) : allowance.run(total * (text.length + 1), () => regex.test(text));
  const prefixes = translated.map((t) => t.literalPrefix);
  if (prefixes.includes('')) {
    return run;
  }
  return (text, allowance) => {
    for (const prefix of prefixes) {
      if (text.startsWith(prefix)) {
        return run(text, allowance);
      }
    }
    return false;
  };
}

function compileTogether(translated: readonly TranslatedRegex[], mode: MatchMode, onRefused: OnRefused): RE2JS {
  try {
    return compile(anchored(translated.map((t) => t.source), mode));
  } catch (error) {
    translated.forEach((t, index) => refusedAs(index, onRefused, () => compile(anchored([t.source], mode))));
    // Each compiles alone but not all together: the rules as a whole are refused, at the last one.
    return refusedAs(translated.length - 1, onRefused, () => {
      throw error;
    });
  }
}

function refusedAs<T>(index: number, onRefused: OnRefused, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof PythonRegexError) {
      onRefused(index, error);
    }
    throw error;
  }
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
