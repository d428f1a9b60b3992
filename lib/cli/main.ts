import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { IronlimeError } from '../../interfaces/errors.js';
import { registerAgentCommands } from './agent-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerBrokerCommands } from './broker-commands.js';
import { registerCaCommands } from './ca-commands.js';
import type { CliContext, CommandRegistrar } from './cli-context.js';
import { registerDbCommands } from './db-commands.js';
import { registerDemoCommands } from './demo-commands.js';
import { EXIT_USAGE } from './exit-codes.js';
import { registerFleetCommands } from './fleet-commands.js';
import { registerImaCommands } from './ima-commands.js';
import { registerKbsCommands } from './kbs-commands.js';
import { registerMbCommands } from './mb-commands.js';
import { registerPolicyCommands } from './policy-commands.js';
import { registerRegistrarCommands } from './registrar-commands.js';
import { registerTenantCommands } from './tenant-commands.js';
import { registerTokenCommands } from './token-commands.js';
import { registerTpmCommands } from './tpm-commands.js';
import { registerVerifierCommands } from './verifier-commands.js';

/** Each area's sub-commands, registered from a file of its own in this folder. */
const REGISTRARS: readonly CommandRegistrar[] = [registerCaCommands, registerDbCommands, registerImaCommands, registerMbCommands, registerPolicyCommands, registerTpmCommands, registerAgentCommands, registerTenantCommands, registerRegistrarCommands, registerVerifierCommands, registerFleetCommands, registerDemoCommands, registerBrokerCommands, registerKbsCommands, registerAuditCommands, registerTokenCommands];

/** Builds the `ironlime` command tree. */
export function buildProgram(context: CliContext): Command {
  const program = new Command('ironlime')
    .description('Attestation for bare-metal provisioning: Keylime-compatible services and tools.')
    .exitOverride()
    // One hint line: a command's whole help (50 lines for the verifier) buried the error above it.
    .showHelpAfterError('(add --help for the usage)');
  for (const register of REGISTRARS) {
    register(program, context);
  }
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = buildProgram({
    setExitCode(code) {
      exitCode = code;
    },
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (error instanceof IronlimeError) {
      process.stderr.write(`ironlime: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (isSystemError(error)) {
      process.stderr.write(`ironlime: ${error.message}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}

/**
 * An error the operating system reported (a missing file, a folder that is a file, no permission):
 * the user's input or environment is wrong, so one line says what; anything else is a bug and keeps
 * its stack trace.
 */
function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && ('syscall' in error || 'path' in error);
}
