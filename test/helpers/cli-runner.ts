import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { main } from '../../lib/cli/main.js';

/** What `ironlime` wrote to stdout and stderr while a capture was on. */
export interface CapturedOutput {
  readonly out: string[];
  readonly err: string[];
  /** Puts the real stdout/stderr back. */
  restore(): void;
}

/** Captures everything written to process.stdout/stderr until `restore()`. */
export function captureOutput(): CapturedOutput {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
  // As a stream's write does, a callback given (last) is called once the chunk is taken: a caller may wait for it.
  const capture =
    (into: string[]) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      into.push(String(chunk));
      const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      if (done !== undefined) process.nextTick(done);
      return true;
    };
  process.stdout.write = capture(out) as typeof process.stdout.write;
  process.stderr.write = capture(err) as typeof process.stderr.write;
  return {
    out,
    err,
    restore() {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
    },
  };
}

/** The exit code of an in-process `ironlime` run and what it printed. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `ironlime <args>` in this process; resolves to the exit code and what it printed. */
export async function runCli(args: readonly string[]): Promise<CliRun> {
  const output = captureOutput();
  try {
    const code = await main(['node', 'ironlime', ...args]);
    return { code, stdout: output.out.join(''), stderr: output.err.join('') };
  } finally {
    output.restore();
  }
}

/** `ironlime <args>` as a child process of the compiled CLI beside this file; its output is collected. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stdout contains `text`; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs: number): Promise<void>;
  /** Resolves to the exit code (a signal counts as -1). */
  exited(): Promise<number>;
}

const MAIN = path.resolve(import.meta.dirname, '../../lib/cli/main.js');
const RUNNER = 'const { main } = await import(process.argv[1]); process.exitCode = await main(["node", "ironlime", ...process.argv.slice(2)]);';

export function spawnCli(args: readonly string[]): CliProcess {
  const child = spawn(process.execPath, ['--input-type=module', '-e', RUNNER, MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: () => exit,
    waitForOutput(text, timeoutMs) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = (): void => {
          if (out.includes(text)) {
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            reject(new Error(`ironlime exited (${String(child.exitCode ?? child.signalCode)}) before printing "${text}": ${err.slice(-2000)}`));
          } else if (Date.now() - started > timeoutMs) {
            reject(new Error(`ironlime did not print "${text}" within ${timeoutMs} ms: ${err.slice(-2000)}`));
          } else {
            setTimeout(poll, 50);
          }
        };
        poll();
      });
    },
  };
}
