import type { Command } from 'commander';

/** What a command needs from the CLI shell besides its arguments. */
export interface CliContext {
  /** Sets the exit code the process ends with (see exit-codes.ts). */
  setExitCode(code: number): void;
}

/** Adds one area's sub-commands (`tpm`, `ima`, `db`, …) to the program. */
export type CommandRegistrar = (program: Command, context: CliContext) => void;
