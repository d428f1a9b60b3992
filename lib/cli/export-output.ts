import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/**
 * An export's output (stdout or `--out`), written a line at a time with back-pressure. The stream's
 * first error (a closed pipe, a full disk, an `--out` that cannot be opened) is kept and thrown by the
 * next write as a coded error naming the output, so it stops the export instead of crashing the
 * process with a stack trace; what was written has no manifest, which `audit verify` refuses.
 */
export class ExportOutput {
  private failure: Error | undefined;

  constructor(
    private readonly out: Writable,
    private readonly name: string,
  ) {
    out.on('error', (error: Error) => {
      this.failure ??= error;
    });
  }

  async write(text: string): Promise<void> {
    this.check();
    if (!this.out.write(text)) await this.settled(once(this.out, 'drain'));
    this.check();
  }

  /** The last line: resolves once it is handed to the system (ending a file), or throws why it could not be. */
  async finish(text: string): Promise<void> {
    this.check();
    await this.settled(new Promise<void>((resolve) => this.out.write(text, () => resolve())));
    // A stream that failed emits no 'finish': ending it would wait for ever.
    this.check();
    if (this.out !== process.stdout) {
      this.out.end();
      await this.settled(once(this.out, 'finish'));
    }
    this.check();
  }

  private async settled(wait: Promise<unknown>): Promise<void> {
    await wait.catch((error: unknown) => {
      this.failure ??= error as Error;
    });
  }

  private check(): void {
    if (this.failure !== undefined) throw new InvalidParameterValue(this.name, `cannot write the export: ${this.failure.message}; what was written has no manifest`);
  }
}
