import type { Command } from 'commander';
import { InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { loadConfig } from '../config/load-config.js';
import { createDatabase, redactUrl, type Database } from '../db/database-factory.js';
import { lastBatchIsEveryMigration, migrateLatest, migrateRollbackAll, migrateRollbackLastBatch } from '../db/migrate.js';
import type { CliContext, CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';

interface DbOptions {
  readonly database?: string;
  readonly dataDir?: string;
  readonly config?: string;
  readonly all?: boolean;
}

/**
 * `ironlime db migrate` and `ironlime db rollback`: apply or undo ironlime's schema migrations on
 * PostgreSQL (`--database postgres://…`, or `databaseUrl` / `IRONLIME_DATABASE_URL`) or, without a
 * URL, on the embedded PGlite database under the data folder (`--data-dir`, `IRONLIME_DATA_DIR`,
 * default `./.ironlime`).
 */
export const registerDbCommands: CommandRegistrar = (program, context) => {
  const db = program.command('db').description("manage ironlime's database schema");
  withDatabaseOptions(db.command('migrate').description('apply every pending migration')).action(
    (options: DbOptions) => run(options, context, 'migrate', (database) => migrateLatest(database.knex)),
  );
  withDatabaseOptions(db.command('rollback').description('undo the last batch of migrations (--all: every one)'))
    .option('--all', 'undo every ironlime migration, dropping its tables')
    .action((options: DbOptions) =>
      run(options, context, 'rollback', async (database) => {
        if (options.all === true) return migrateRollbackAll(database.knex);
        // knex's last batch is every migration on a schema migrated once: the same loss as --all, unasked.
        if (await lastBatchIsEveryMigration(database.knex)) {
          throw new InvalidParameterValue('db rollback', 'the last batch holds every ironlime migration (the first install): undoing it drops every ironlime table and its data; give --all to do that');
        }
        return migrateRollbackLastBatch(database.knex);
      }),
    );
};

function withDatabaseOptions(command: Command): Command {
  return command
    .option('--database <url>', 'PostgreSQL URL (default: databaseUrl / $IRONLIME_DATABASE_URL, else embedded PGlite)')
    .option('--data-dir <dir>', 'data folder holding the PGlite database (default: $IRONLIME_DATA_DIR or ./.ironlime)')
    .option('--config <file>', 'JSON config file (see docs/config.md)');
}

async function run(
  options: DbOptions,
  context: CliContext,
  action: 'migrate' | 'rollback',
  change: (database: Database) => Promise<string[]>,
): Promise<void> {
  // --database is checked as the config's databaseUrl is (a postgres:// URL), taking its place.
  const env = options.database === undefined ? process.env : { ...process.env, IRONLIME_DATABASE_URL: options.database };
  const config = loadConfig({ ...(options.config === undefined ? {} : { file: options.config }), env });
  const url = config.databaseUrl;
  const dataDir = options.dataDir ?? config.dataDir;
  const database = await createDatabase({ ...(url === undefined ? {} : { url }), dataDir });
  const where = database.kind === 'pglite' ? `PGlite in ${dataDir}` : redactUrl(url);
  try {
    const names = await change(database);
    const verb = action === 'migrate' ? 'applied' : 'rolled back';
    const summary = names.length === 0 ? `nothing to do (${where})` : `${verb} ${names.length} migration(s) on ${where}:`;
    process.stdout.write([summary, ...names.map((name) => `  ${name}`)].join('\n') + '\n');
    context.setExitCode(EXIT_VALID);
  } catch (error) {
    if (error instanceof IronlimeError) {
      throw error;
    }
    process.stderr.write(`ironlime: db ${action} failed on ${where}: ${String(error)}\n`);
    context.setExitCode(EXIT_INVALID);
  } finally {
    await database.close();
  }
}
