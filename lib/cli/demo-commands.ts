import { runDemo } from '../demo/run-demo.js';
import type { CommandRegistrar } from './cli-context.js';

/**
 * `ironlime demo [--software-tpm] [--push]` (also `npm run demo`): the one-command demo of `lib/demo/run-demo.ts`.
 * Exit code 0 when the tampered node was refused and the others stayed trusted, 1 otherwise, 130 on
 * SIGINT/SIGTERM (after everything it started has been stopped).
 */
export const registerDemoCommands: CommandRegistrar = (program, context) => {
  program
    .command('demo')
    .description('run four emulated nodes (one without a TPM) through clean and deploy with Keylime attestation, tamper with one, watch it refused')
    .option('--software-tpm', 'use the in-process software TPM even when swtpm is installed')
    .option('--push', 'add a push-model node beside the pull nodes (docs/push.md)')
    .option('--keep-running', 'after the result, keep everything up (the dashboard too) until Ctrl-C')
    .action(async (options: { softwareTpm?: boolean; push?: boolean; keepRunning?: boolean }) => {
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals): void => controller.abort(new Error(`received ${signal}`));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const result = await runDemo({
          softwareTpm: options.softwareTpm === true,
          push: options.push === true,
          print: (line) => process.stdout.write(`${line}\n`),
          signal: controller.signal,
          keepRunning: options.keepRunning === true,
        });
        process.stdout.write(`demo finished in ${(result.elapsedMs / 1000).toFixed(1)} s\n`);
        context.setExitCode(result.exitCode);
      } finally {
        process.removeListener('SIGINT', stop);
        process.removeListener('SIGTERM', stop);
      }
    });
};
