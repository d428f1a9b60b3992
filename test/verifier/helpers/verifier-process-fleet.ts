import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { createDatabase, type Database } from '../../../lib/db/database-factory.js';
import { migrateLatest } from '../../../lib/db/migrate.js';
import { TEST_DATABASE_URL } from '../../helpers/databases.js';
import { REPO_ROOT } from '../../helpers/paths.js';
import { createTestSchema } from './verifier-fixture.js';

/**
 * `ironlime verifier` processes on one freshly migrated test schema: `start` spawns one per instance id
 * (each with its own data dir), `close` kills them all (SIGCONT first, so a paused one dies too) and
 * drops the schema and the temporary folder.
 */
export interface VerifierProcessFleet {
  readonly knex: Knex;
  readonly processes: ReadonlyMap<string, ChildProcess>;
  /** The `--data-dir` of `instance`'s processes. */
  dataDirOf(instance: string): string;
  start(instance: string, args: readonly string[], logLevel: string): ChildProcess;
  close(): Promise<void>;
}

export async function createVerifierProcessFleet(dirPrefix: string): Promise<VerifierProcessFleet> {
  const dir = mkdtempSync(path.join(tmpdir(), dirPrefix));
  const schema = await createTestSchema();
  let database: Database | undefined;
  try {
    database = await createDatabase({ url: TEST_DATABASE_URL, dataDir: dir, searchPath: schema.name });
    await migrateLatest(database.knex);
  } catch (error) {
    await database?.close();
    await schema.drop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const opened = database;
  const processes = new Map<string, ChildProcess>();
  return {
    knex: opened.knex,
    processes,
    dataDirOf: (instance) => path.join(dir, instance),
    start(instance, args, logLevel) {
      const child = spawn(
        process.execPath,
        [
          path.join(REPO_ROOT, 'bin', 'ironlime.js'),
          'verifier',
          '--data-dir', path.join(dir, instance),
          '--port', '0',
          '--database', schema.url,
          '--instance-id', instance,
          ...args,
          '--log-level', logLevel,
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      processes.set(instance, child);
      return child;
    },
    async close() {
      for (const child of processes.values()) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await opened.close();
      await schema.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
