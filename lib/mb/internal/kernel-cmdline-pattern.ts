import { checkPythonPattern, compilePythonPatterns, type LinearMatcher } from '../../python-regex/linear-regex.js';
import { PythonRegexError } from '../../python-regex/python-regex-error.js';
import { MbRefstateError } from '../mb-refstate.js';

/** The text GRUB puts before the kernel command line in its PCR 8 EV_IPL string. */
export const KERNEL_CMDLINE_PREFIX = 'kernel_cmdline: ';

/**
 * A refstate's `kernel_cmdline` is a Python regular expression that Keylime's example policy
 * compiles after the prefix (`RegExp("kernel_cmdline: " + pattern)`) and applies with `fullmatch`
 * (keylime/mba/elchecking/example.py and tests.py). It comes with a refstate, that is from a
 * request, so it runs on the linear-time engine of lib/python-regex (shared with the IMA
 * excludes, which are the same Python syntax); what that engine cannot express is refused when the
 * refstate is parsed, with the feature named.
 *
 * @throws MbRefstateError naming `where` and the reason.
 */
export function checkKernelCmdline(pattern: string, where: string): void {
  try {
    checkPythonPattern(`${KERNEL_CMDLINE_PREFIX}${pattern}`, 'full');
  } catch (error) {
    throw refused(error, where);
  }
}

/** Compiles a checked `kernel_cmdline` into a full-match test over `kernel_cmdline: <text>`. */
export function compileKernelCmdline(pattern: string, where = 'kernel_cmdline'): LinearMatcher {
  try {
    return compilePythonPatterns([`${KERNEL_CMDLINE_PREFIX}${pattern}`], 'full');
  } catch (error) {
    throw refused(error, where);
  }
}

function refused(error: unknown, where: string): unknown {
  if (error instanceof PythonRegexError) {
    return new MbRefstateError(`${where} is not a valid regular expression (${error.message})`, { cause: error });
  }
  return error;
}
