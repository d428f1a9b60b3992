import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The command line that runs a program; `spawn`'s first two arguments. */
export interface CommandLine {
  readonly command: string;
  readonly args: string[];
}

let setpriv: string | null | undefined;

/**
 * `command args`, run so that the kernel sends it SIGTERM once this process is gone, however it went
 * (SIGKILL, or a signal it had no handler for, which skips the exit hooks): util-linux's
 * `setpriv --pdeathsig` sets Linux's PR_SET_PDEATHSIG, then execs the command under the same pid.
 * Unchanged where `setpriv` is not on PATH.
 */
export function withParentDeathSignal(command: string, args: readonly string[]): CommandLine {
  setpriv ??= findOnPath('setpriv') ?? null;
  return setpriv === null ? { command, args: [...args] } : { command: setpriv, args: ['--pdeathsig', 'TERM', '--', command, ...args] };
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
