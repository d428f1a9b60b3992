import type { WorkerOptions } from 'node:worker_threads';

/** Options that only say how the main script is given; a thread refuses them (`--input-type` ends it at start). */
const MAIN_INPUT_OPTIONS: ReadonlySet<string> = new Set(['-e', '--eval', '-p', '--print', '--input-type']);

/**
 * The Node options to start a thread with: undefined (the thread inherits the process's options as
 * they were parsed, V8's and the process-wide ones included, which a thread given them as a list
 * refuses: `--max-old-space-size` made every evidence request a 500) unless the process was started
 * with an option about the main script's input; then the process's options less those and their values.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] | undefined {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i += 1) {
    const option = execArgv[i] as string;
    if (MAIN_INPUT_OPTIONS.has(option)) {
      i += 1;
    } else if (!MAIN_INPUT_OPTIONS.has(option.split('=')[0] as string)) {
      kept.push(option);
    }
  }
  return kept.length === execArgv.length ? undefined : kept;
}

/** The options to start a worker thread of this process with (`workerExecArgv`). */
export function workerOptions(execArgv: readonly string[]): WorkerOptions {
  const threadArgv = workerExecArgv(execArgv);
  return threadArgv === undefined ? {} : { execArgv: threadArgv };
}
