import { execFile, type ExecFileException } from 'node:child_process';
import { TpmAccessError, formatResponseCode } from '../tpm-access-error.js';

export interface ToolRunnerOptions {
  /** TSS2 TCTI string, e.g. `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`. */
  tcti: string;
  /** Working directory for relative paths (the adapter's private temp dir). */
  workDir: string;
  /** Kill a tool that has not finished after this many milliseconds. */
  timeoutMs: number;
}

/**
 * Runs tpm2-tools commands: `execFile` (never a shell, so no argument is ever interpreted), a timeout
 * on every call, the TCTI passed through `TPM2TOOLS_TCTI`. A failure becomes a `TpmAccessError` whose
 * message names the tool and quotes its last error line, with the TPM response code when the TSS
 * printed one ("Esys_Quote(0x100) - tpm:error(2.0): TPM not initialized …").
 */
export class ToolRunner {
  constructor(private readonly options: ToolRunnerOptions) {}

  /** Runs `tool args…` and resolves to its stdout. */
  run(tool: string, args: readonly string[]): Promise<string> {
    const { tcti, workDir, timeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      execFile(
        tool,
        [...args],
        {
          cwd: workDir,
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 4 * 1024 * 1024,
          env: { ...process.env, TPM2TOOLS_TCTI: tcti },
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          if (error === null) {
            resolve(stdout);
            return;
          }
          reject(toolError(tool, error, stderr, timeoutMs));
        },
      );
    });
  }
}

/**
 * A tool killed at its timeout. The TPM may have run what the tool sent before it went quiet, and keeps
 * any session the tool started (see `flushLoadedSessions`).
 */
export class ToolTimeoutError extends TpmAccessError {}

function toolError(
  tool: string,
  error: ExecFileException,
  stderr: string,
  timeoutMs: number,
): TpmAccessError {
  if (error.code === 'ENOENT') {
    return new TpmAccessError(`${tool}: not found; install tpm2-tools`, { cause: error });
  }
  if (error.killed === true) {
    return new ToolTimeoutError(`${tool}: no answer within ${timeoutMs} ms (is the TPM reachable?)`, { cause: error });
  }
  const responseCode = parseResponseCode(stderr);
  const detail = firstErrorLine(stderr) ?? `exit status ${String(error.code)}`;
  const rc = responseCode === undefined ? '' : ` [TPM rc ${formatResponseCode(responseCode)}]`;
  return new TpmAccessError(`${tool}: ${detail}${rc}`, { cause: error, responseCode });
}

/**
 * The response code the TSS reports: tpm2-tools prints `Esys_<Command>(0x<rc>) - <text>`, and ESYS
 * logs `ErrorCode (0x<rc>)`. Returns undefined when the failure did not come from the TPM.
 */
export function parseResponseCode(stderr: string): number | undefined {
  const match = /Esys_\w+\((0x[0-9a-fA-F]+)\)/.exec(stderr) ?? /ErrorCode \((0x[0-9a-fA-F]+)\)/.exec(stderr);
  return match?.[1] === undefined ? undefined : Number.parseInt(match[1], 16);
}

/** The most specific line of a tool's stderr: the first `ERROR:` line that is not "Unable to run". */
function firstErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('ERROR:') && !line.startsWith('ERROR:esys') && !/Unable to run/.test(line));
  const line = lines[0];
  return line === undefined ? undefined : line.slice('ERROR:'.length).trim();
}
