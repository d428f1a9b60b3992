import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ToolRunner } from './tool-runner.js';

/**
 * What every tpm2-tools step needs: the runner and a private work directory. File names carry a
 * counter, so a file left behind by a failed call is never mistaken for the output of the next one,
 * and `removeTempFiles()` deletes them once an operation is over (an agent quotes for months).
 */
export class ToolContext {
  private counter = 0;
  private readonly created: string[] = [];

  constructor(
    readonly tools: ToolRunner,
    readonly workDir: string,
  ) {}

  run(tool: string, args: readonly string[]): Promise<string> {
    return this.tools.run(tool, args);
  }

  /** A fresh absolute path in the work dir. */
  tempPath(name: string): string {
    this.counter += 1;
    const file = path.join(this.workDir, `${this.counter}-${name}`);
    this.created.push(file);
    return file;
  }

  /** Deletes every file handed out by `tempPath` so far. */
  async removeTempFiles(): Promise<void> {
    const files = this.created.splice(0);
    await Promise.all(files.map((file) => rm(file, { force: true })));
  }

  /** Writes `bytes` to a fresh file readable by us only and returns its path. */
  async writeTemp(name: string, bytes: Uint8Array): Promise<string> {
    const file = this.tempPath(name);
    await writeFile(file, bytes, { mode: 0o600 });
    return file;
  }

  async readBytes(file: string): Promise<Uint8Array> {
    return new Uint8Array(await readFile(file));
  }
}
