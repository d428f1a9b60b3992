import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { openMigratedTestSchema, type OpenedDatabase } from './databases.js';

/** What `verifierPerSuite` holds while its suite runs. */
export interface SuiteVerifier {
  readonly verifier: RunningVerifier;
  readonly database: OpenedDatabase;
  /** The verifier's data folder (its token signing key is there). */
  readonly dataDir: string;
}

/**
 * Registers mocha hooks in the calling `describe`: one TLS verifier on a fresh PostgreSQL test schema
 * and a data folder of its own (`prefix`), started before the suite and closed after it. Polling is
 * an hour apart: the suites using it exercise the HTTP front door, not rounds. With
 * `inProcessForTests`, no TLS and no socket: requests go through `verifier.service.app.inject`.
 */
export function verifierPerSuite(prefix: string, options: { readonly inProcessForTests?: boolean } = {}): SuiteVerifier {
  let dir: string | undefined;
  let opened: OpenedDatabase | undefined;
  let running: RunningVerifier | undefined;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), prefix));
    opened = await openMigratedTestSchema();
    running = await startVerifier({ dataDir: dir, port: 0, quoteInterval: 3600 }, { database: opened.database, ...options });
  });
  after(async () => {
    await running?.close();
    await opened?.dispose();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get verifier(): RunningVerifier {
      if (running === undefined) throw new Error('the suite verifier is not started yet');
      return running;
    },
    get database(): OpenedDatabase {
      if (opened === undefined) throw new Error('the suite database is not opened yet');
      return opened;
    },
    get dataDir(): string {
      if (dir === undefined) throw new Error('the suite data folder is not made yet');
      return dir;
    },
  };
}
