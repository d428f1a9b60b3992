import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { IronlimeError } from '../../interfaces/errors.js';
import type { CliContext, CommandRegistrar } from './cli-context.js';
import { EXIT_USAGE } from './exit-codes.js';

/** A top-level command and the file that registers it with its sub-commands. */
interface TopLevelCommand {
  readonly name: string;
  readonly load: () => Promise<CommandRegistrar>;
}

/**
 * Each area's command, registered from a file of its own in this folder, in the order of the help.
 * A file is loaded only when its command runs: loading every area's modules cost about 1.5 s of CPU
 * before `ironlime tenant …` or `ironlime kbs …` did anything (0.25–0.65 s for one area's).
 */
const COMMANDS: readonly TopLevelCommand[] = [
  { name: 'ca', load: async () => (await import('./ca-commands.js')).registerCaCommands },
  { name: 'db', load: async () => (await import('./db-commands.js')).registerDbCommands },
  { name: 'ima', load: async () => (await import('./ima-commands.js')).registerImaCommands },
  { name: 'mb', load: async () => (await import('./mb-commands.js')).registerMbCommands },
  { name: 'policy', load: async () => (await import('./policy-commands.js')).registerPolicyCommands },
  { name: 'tpm', load: async () => (await import('./tpm-commands.js')).registerTpmCommands },
  { name: 'agent', load: async () => (await import('./agent-commands.js')).registerAgentCommands },
  { name: 'tenant', load: async () => (await import('./tenant-commands.js')).registerTenantCommands },
  { name: 'registrar', load: async () => (await import('./registrar-commands.js')).registerRegistrarCommands },
  { name: 'verifier', load: async () => (await import('./verifier-commands.js')).registerVerifierCommands },
  { name: 'fleet', load: async () => (await import('./fleet-commands.js')).registerFleetCommands },
  { name: 'demo', load: async () => (await import('./demo-commands.js')).registerDemoCommands },
  { name: 'broker', load: async () => (await import('./broker-commands.js')).registerBrokerCommands },
  { name: 'kbs', load: async () => (await import('./kbs-commands.js')).registerKbsCommands },
  { name: 'audit', load: async () => (await import('./audit-commands.js')).registerAuditCommands },
  { name: 'token', load: async () => (await import('./token-commands.js')).registerTokenCommands },
];

/**
 * Builds the `ironlime` command tree for `argv` (as in `process.argv`): only the command it names, or
 * every command when it names none that exists (the top-level help, or a typo that commander answers
 * with the nearest name).
 */
export async function buildProgram(context: CliContext, argv: readonly string[]): Promise<Command> {
  const program = new Command('ironlime')
    .description('Attestation for bare-metal provisioning: Keylime-compatible services and tools.')
    .exitOverride()
    // One hint line: a command's whole help (50 lines for the verifier) buried the error above it.
    .showHelpAfterError('(add --help for the usage)');
  const named = COMMANDS.filter((command) => command.name === argv[2]);
  for (const command of named.length > 0 ? named : COMMANDS) {
    (await command.load())(program, context);
  }
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = await buildProgram(
    {
      setExitCode(code) {
        exitCode = code;
      },
    },
    argv,
  );
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
