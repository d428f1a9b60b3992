import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSwtpm, type StartSwtpmOptions, type SwtpmHandle } from '../../lib/tpm-access/swtpm-manager.js';
import type { QuoteResult, TpmHashAlgorithm } from '../../lib/tpm-access/tpm-port.js';

/** A swtpm in a private temp dir; `cleanup()` stops it and deletes the dir. */
export interface SwtpmFixture {
  swtpm: SwtpmHandle;
  dir: string;
  cleanup(): Promise<void>;
}

export async function startTestSwtpm(options: Omit<StartSwtpmOptions, 'stateDir'> = {}): Promise<SwtpmFixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-swtpm-test-'));
  try {
    const swtpm = await startSwtpm({ ...options, stateDir: path.join(dir, 'state') });
    return {
      swtpm,
      dir,
      async cleanup() {
        await swtpm.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Runs a tool and resolves to its exit status and output (never rejects on a non-zero status). */
export function runTool(tool: string, args: readonly string[], options: { tcti?: string; cwd?: string } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      tool,
      [...args],
      { cwd: options.cwd, timeout: 30_000, env: options.tcti === undefined ? process.env : { ...process.env, TPM2TOOLS_TCTI: options.tcti } },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

/**
 * `tpm2_checkquote`'s verdict on a quote: true when it exits 0. Runs in an empty temp dir, so the hex
 * nonce given to `-q` (HEX_STRING_OR_PATH) can never name a file.
 */
export async function checkQuoteWithTools(akPublic: Uint8Array, quote: QuoteResult, nonce: Uint8Array, hashAlg: TpmHashAlgorithm): Promise<boolean> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-checkquote-'));
  try {
    const files = { ak: 'ak.pub', msg: 'quote.msg', sig: 'quote.sig', pcrs: 'quote.pcrs' };
    await writeFile(path.join(dir, files.ak), akPublic);
    await writeFile(path.join(dir, files.msg), quote.attest);
    await writeFile(path.join(dir, files.sig), quote.signature);
    await writeFile(path.join(dir, files.pcrs), quote.pcrBlob);
    const args = ['-u', files.ak, '-m', files.msg, '-s', files.sig, '-f', files.pcrs, '-g', hashAlg];
    if (nonce.length > 0) {
      args.push('-q', Buffer.from(nonce).toString('hex'));
    }
    const { status } = await runTool('tpm2_checkquote', args, { cwd: dir });
    return status === 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A copy of `bytes` with one byte at `index` flipped. */
export function flipByte(bytes: Uint8Array, index: number): Uint8Array {
  const copy = bytes.slice();
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

/** Handles `tpm2_getcap <what>` lists (`- 0x…` lines). */
export async function listHandles(tcti: string, what: string): Promise<string[]> {
  const { stdout } = await runTool('tpm2_getcap', [what], { tcti });
  return [...stdout.matchAll(/0x[0-9a-fA-F]+/g)].map((m) => m[0].toLowerCase());
}
