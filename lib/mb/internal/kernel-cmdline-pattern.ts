import { compilePythonPatterns, translateWithinBudget, type LinearMatcher } from '../../python-regex/linear-regex.js';
import { PythonRegexError } from '../../python-regex/python-regex-error.js';
import { MbRefstateError, type RefstateKernel } from '../mb-refstate.js';

/** The text GRUB puts before the kernel command line in its PCR 8 EV_IPL string. */
export const KERNEL_CMDLINE_PREFIX = 'kernel_cmdline: ';

/**
 * `kernels` entries a refstate may have: one per boot chain the node may start (Keylime's
 * create_mb_refstate writes one). Each entry is compiled and judged against the log, so the count
 * bounds a refstate's cost whatever its patterns.
 */
export const MAX_REFSTATE_KERNELS = 64;
/**
 * Units (lib/python-regex/internal/program-cost.ts) of all of a refstate's `kernel_cmdline` patterns
 * together: two patterns at the one-pattern budget. re2js compiles that in well under a second; a
 * real command line escaped as a pattern costs a few hundred.
 */
export const KERNEL_CMDLINES_BUDGET = 100_000;

/**
 * A refstate's `kernel_cmdline` is a Python regular expression that Keylime's example policy
 * compiles after the prefix (`RegExp("kernel_cmdline: " + pattern)`) and applies with `fullmatch`
 * (keylime/mba/elchecking/example.py and tests.py). It comes with a refstate, that is from a
 * request, so it runs on the linear-time engine of lib/python-regex (shared with the IMA
 * excludes, which are the same Python syntax); what that engine cannot express is refused when the
 * refstate is parsed, with the feature named.
 *
 * Translates one kernel's pattern and adds its cost to `spentUnits` (what the refstate's earlier
 * patterns cost), without compiling it: the refstate's parser checks the budget before RE2 compiles
 * anything, then compiles each entry (`kernelCmdlineMatcher`).
 *
 * @throws MbRefstateError naming `where` and the reason (including the refstate's patterns together
 *   passing `KERNEL_CMDLINES_BUDGET`).
 */
export function chargeKernelCmdline(pattern: string, where: string, spentUnits: number): number {
  let spent: number;
  try {
    spent = spentUnits + translateWithinBudget(`${KERNEL_CMDLINE_PREFIX}${pattern}`, 'full').cost;
  } catch (error) {
    throw refused(error, where);
  }
  if (spent > KERNEL_CMDLINES_BUDGET) {
    throw new MbRefstateError(`${where}: the refstate's kernel_cmdline patterns up to this one are too costly together (over ${KERNEL_CMDLINES_BUDGET} units)`);
  }
  return spent;
}

/** Compiles a checked `kernel_cmdline` into a full-match test over `kernel_cmdline: <text>`. */
export function compileKernelCmdline(pattern: string, where = 'kernel_cmdline'): LinearMatcher {
  try {
    return compilePythonPatterns([`${KERNEL_CMDLINE_PREFIX}${pattern}`], 'full');
  } catch (error) {
    throw refused(error, where);
  }
}

/** Each kernel entry's matcher, with the pattern it was compiled from (an entry changed since is compiled again). */
const compiledKernels = new WeakMap<RefstateKernel, { readonly pattern: string; readonly matches: LinearMatcher }>();

/**
 * `compileKernelCmdline` of a refstate kernel entry, once per entry object: a refstate is loaded
 * once and judged every round, and compiling is most of what a pattern costs.
 *
 * @throws MbRefstateError naming `where` when RE2 refuses the pattern.
 */
export function kernelCmdlineMatcher(kernel: RefstateKernel, where = 'kernel_cmdline'): LinearMatcher {
  const cached = compiledKernels.get(kernel);
  if (cached !== undefined && cached.pattern === kernel.kernel_cmdline) {
    return cached.matches;
  }
  const matches = compileKernelCmdline(kernel.kernel_cmdline, where);
  compiledKernels.set(kernel, { pattern: kernel.kernel_cmdline, matches });
  return matches;
}

function refused(error: unknown, where: string): unknown {
  if (error instanceof PythonRegexError) {
    return new MbRefstateError(`${where} is not a valid regular expression (${error.message})`, { cause: error });
  }
  return error;
}
