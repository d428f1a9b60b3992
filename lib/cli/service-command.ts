import path from 'node:path';
import { redactUrl, type Database } from '../db/database-factory.js';
import { runUntilSignal, type Closeable } from '../http/service-lifecycle.js';
import type { CliContext } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';

/**
 * The end of `ironlime registrar` / `ironlime verifier`: prints the service's facts, one per line, then
 * serves until SIGTERM/SIGINT, closes the service (a close error goes to stderr, prefixed with `name`),
 * prints "<name> stopped (<signal>)" and exits 0.
 */
export async function serveUntilSignal(context: CliContext, name: string, running: Closeable, lines: readonly string[]): Promise<void> {
  process.stdout.write(lines.join('\n') + '\n');
  const signal = await runUntilSignal([running], {
    onCloseError: (error) => process.stderr.write(`ironlime: ${name}: ${String(error)}\n`),
  });
  process.stdout.write(`${name} stopped (${signal})\n`);
  context.setExitCode(EXIT_VALID);
}

/** How a service's start-up facts name its database: the PGlite folder, or the URL without its password. */
export function databaseFact(kind: Database['kind'], dataDir: string, databaseUrl: string | undefined): string {
  return kind === 'pglite' ? `PGlite in ${path.join(dataDir, 'pglite')}` : redactUrl(databaseUrl);
}
