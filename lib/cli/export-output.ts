import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/**
 * An export's output (stdout or `--out`), written a line at a time with back-pressure. The stream's
 * first error (a closed pipe, a full disk, an `--out` that cannot be opened) is kept and thrown by the
 * next write as a coded error naming the output, so it stops the export instead of crashing the
 * process with a stack trace; what was written to stdout has no manifest, which `audit verify` refuses.
 * A file is written beside its name and renamed over it only once complete: an export that stops
 * leaves an earlier export of that name as it was.
 */
export class ExportOutput {
  private failure: Error | undefined;

  private constructor(
    private readonly out: Writable,
    private readonly name: string,
    /** Where a file goes: `partial` renamed to `final` once complete, or null for a device or pipe, written as it is. */
    private readonly file?: { readonly partial: string | null; readonly final: string },
  ) {
    out.on('error', (error: Error) => {
      this.failure ??= error;
    });
  }

  static toStdout(): ExportOutput {
    return new ExportOutput(process.stdout, 'stdout');
  }

  /**
   * Writes `<file>.partial-<pid>-<random>` (created, never an existing file or link), renamed to `file`
   * by `finish`. Random too: an export run as a container's pid 1 has the pid of the one killed before it.
   * An existing `file` that is not a regular file (`/dev/stdout`, `/dev/fd/3`, a named pipe) is written
   * as it is: renamed over, it was replaced by a regular file (as root, `/dev/stdout` itself) and its
   * reader got nothing.
   */
  static toFile(file: string): ExportOutput {
    if (existsAsOtherThanFile(file)) return new ExportOutput(createWriteStream(file), file, { partial: null, final: file });
    const partial = `${file}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
    return new ExportOutput(createWriteStream(partial, { flags: 'wx' }), file, { partial, final: file });
  }

  async write(text: string): Promise<void> {
    this.check();
    if (!this.out.write(text)) await this.settled(once(this.out, 'drain'));
    this.check();
  }

  /** The last line: resolves once it is handed to the system (a file ended and renamed into place), or throws why it could not be. */
  async finish(text: string): Promise<void> {
    this.check();
    await this.settled(new Promise<void>((resolve) => this.out.write(text, () => resolve())));
    // A stream that failed emits no 'finish': ending it would wait for ever.
    this.check();
    if (this.file !== undefined) {
      this.out.end();
      await this.settled(once(this.out, 'finish'));
      this.check();
      if (this.file.partial !== null) await this.settled(rename(this.file.partial, this.file.final));
    }
    this.check();
  }

  /** After an export that stopped before `finish`: a file's partial copy is removed. */
  async discard(): Promise<void> {
    if (this.file === undefined) return;
    this.out.destroy();
    // A stream destroyed before its file was opened still opens (creates) it: removed once closed.
    await finished(this.out).catch(() => undefined);
    if (this.file.partial !== null) await rm(this.file.partial, { force: true });
  }

  private async settled(wait: Promise<unknown>): Promise<void> {
    await wait.catch((error: unknown) => {
      this.failure ??= error as Error;
    });
  }

  private check(): void {
    if (this.failure === undefined) return;
    const left = this.file === undefined || this.file.partial === null ? 'what was written has no manifest' : `${this.file.final} was left as it was`;
    throw new InvalidParameterValue(this.name, `cannot write the export: ${this.failure.message}; ${left}`);
  }
}

/** Whether `file` (its links followed) exists and is a device, pipe or socket rather than a regular file. */
function existsAsOtherThanFile(file: string): boolean {
  const stat = statSync(file, { throwIfNoEntry: false });
  return stat !== undefined && !stat.isFile() && !stat.isDirectory();
}
