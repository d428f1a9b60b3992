import type { KeyObject } from 'node:crypto';
import path from 'node:path';
import type { Knex } from 'knex';
import { DatabaseUnavailable, InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { formatAuditCheckpointLine } from '../audit/audit-checkpoint.js';
import { exportAuditLog, type AuditCheckpointSink, type AuditRecordSink } from '../audit/audit-export.js';
import { formatAuditLine } from '../audit/audit-export-format.js';
import { formatAuditManifestLine } from '../audit/audit-manifest.js';
import type { AuditQuery } from '../audit/audit-export-scope.js';
import { AUDIT_PUBLIC_KEY_FILE, loadAuditKey, readAuditPublicKey, type AuditSigningKey } from '../audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES, VERIFIER_AUDIT_TABLES, type AuditTables } from '../audit/audit-tables.js';
import { verifyAuditExportFile } from '../audit/verify-audit-export.js';
import { auditVerifyReport } from './audit-verify-report.js';
import { ExportOutput } from './export-output.js';
import { createDatabase } from '../db/database-factory.js';
import { migrateLatest } from '../db/migrate.js';
import { withoutStatementBound } from '../db/postgres-bounds.js';
import { TerminalProgress } from './terminal-progress.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';
import { verifierDataDir, verifierDatabaseUrl } from './verifier-locations.js';

interface ExportOptions {
  readonly agent?: string;
  readonly since?: string;
  readonly out?: string;
  readonly database?: string;
  readonly dataDir?: string;
  readonly broker?: boolean;
}

interface VerifyOptions {
  readonly publicKey?: string;
  readonly dataDir?: string;
  readonly unsealed?: boolean;
}

/**
 * `ironlime audit export` writes the verifier's signed audit history as JSON lines (one canonical
 * record a line, then the signed manifest, so the same records always give the same bytes); it exits 1
 * when a stream's head row does not name its last record. `ironlime audit verify FILE` checks an
 * export offline and names the first record that breaks its chain or its manifest.
 */
export const registerAuditCommands: CommandRegistrar = (program, context) => {
  const audit = program.command('audit').description("the verifier's signed, hash-chained audit history");
  audit
    .command('export')
    .description('write audit records as JSON lines')
    .option('--agent <id>', "only this agent's chain (default: every stream)")
    .option('--since <time>', "per stream, from the record before the first one at or after this ISO 8601 time to the stream's end")
    .option('--out <file>', 'write to a file instead of stdout')
    .option('--database <url>', "the verifier's PostgreSQL URL (default: $IRONLIME_VERIFIER_DATABASE_URL, else databaseUrl / $IRONLIME_DATABASE_URL, else PGlite in the data dir)")
    .option('--data-dir <dir>', "the verifier's data folder (default: $IRONLIME_VERIFIER_DATA_DIR, else $IRONLIME_DATA_DIR or ./.ironlime)")
    .option('--broker', "the resource broker's log instead: give the broker's --data-dir (its audit key) and --database")
    .action(async (options: ExportOptions) => {
      const dataDir = verifierDataDir(options.dataDir);
      const url = verifierDatabaseUrl(options.database);
      const since = options.since === undefined ? undefined : new Date(options.since);
      if (since !== undefined && Number.isNaN(since.getTime())) throw new InvalidParameterValue('--since', `not a time: ${options.since}`);
      // The verifier's own key signs the manifest: checked before the database is opened (and migrated).
      const key = loadAuditKey(dataDir);
      const database = await createDatabase({ ...(url === undefined ? {} : { url }), dataDir });
      try {
        await migrateLatest(database.knex);
        const out = options.out === undefined ? ExportOutput.toStdout() : ExportOutput.toFile(options.out);
        const filter = {
          ...(options.agent === undefined ? {} : { stream: options.agent }),
          ...(since === undefined ? {} : { since: since.toISOString() }),
        };
        const { records, headMismatches } = await writeAuditExport(database.knex, key, filter, out, options.broker === true ? BROKER_AUDIT_TABLES : VERIFIER_AUDIT_TABLES).catch(async (error: unknown) => {
          await out.discard();
          // The output's own failures are coded already; anything else came from reading the log (a connection cut, a statement refused).
          if (error instanceof IronlimeError) throw error;
          throw new DatabaseUnavailable(`reading the audit log: ${error instanceof Error ? error.message : String(error)}${options.out === undefined ? '' : `; ${options.out} was left as it was`}`, { cause: error });
        });
        if (options.out !== undefined) {
          process.stderr.write(`ironlime: wrote ${records} audit record(s) to ${options.out}\n`);
        }
        for (const stream of headMismatches) {
          process.stderr.write(`ironlime: stream ${stream}: audit_heads does not name its last record: records were deleted or inserted (flagged in the manifest)\n`);
        }
        context.setExitCode(headMismatches.length === 0 ? EXIT_VALID : EXIT_INVALID);
      } finally {
        await database.close();
      }
    });
  audit
    .command('verify')
    .description('check an export offline: hashes, links, signatures, and its signed manifest (where each stream starts and ends)')
    .argument('<file>', 'a file written by `ironlime audit export`')
    .option('--public-key <pem>', `the verifier's audit public key (default: <data dir>/${AUDIT_PUBLIC_KEY_FILE})`)
    .option('--data-dir <dir>', "the verifier's data folder (default: $IRONLIME_VERIFIER_DATA_DIR, else $IRONLIME_DATA_DIR or ./.ironlime)")
    .option('--unsealed', 'accept an export with no manifest (made before manifests): chains only, removed records at the ends and removed streams go unseen')
    .action(async (file: string, options: VerifyOptions) => {
      const keyFile = options.publicKey ?? path.join(verifierDataDir(options.dataDir), AUDIT_PUBLIC_KEY_FILE);
      const publicKey = readVerifyKey(keyFile);
      const result = await verifyAuditExportFile(file, publicKey, { unsealed: options.unsealed === true }).catch((error: unknown) => {
        // A file that cannot be read (missing, a folder, no permission): a coded error, not a stack trace.
        if (error instanceof IronlimeError || typeof (error as NodeJS.ErrnoException).code !== 'string') throw error;
        throw new InvalidParameterValue(file, `cannot read: ${(error as Error).message}`);
      });
      process.stdout.write(auditVerifyReport(result));
      context.setExitCode(result.valid ? EXIT_VALID : EXIT_INVALID);
    });
};

/**
 * Writes the records `filter` selects from the log in `tables`, a batch at a time as read (memory holds
 * one batch), with the signed checkpoint of each run of records retention deleted in its place, then the signed manifest.
 */
async function writeAuditExport(knex: Knex, key: AuditSigningKey, filter: AuditQuery, out: ExportOutput, tables: AuditTables): Promise<{ records: number; headMismatches: readonly string[] }> {
  // On stderr, and only on a terminal: stdout may be the export itself.
  const progress = new TerminalProgress('audit export: records');
  let written = 0;
  const writeBatch: AuditRecordSink = async (batch, expected) => {
    for (const record of batch) await out.write(formatAuditLine(record));
    written += batch.length;
    progress.update(written, expected);
  };
  const writeCheckpoint: AuditCheckpointSink = (checkpoint) => out.write(formatAuditCheckpointLine(checkpoint));
  // Statements over the whole log, run by an operator: not held to the services' 30 s bound.
  const { records, manifest, headMismatches } = await withoutStatementBound(() => exportAuditLog(knex, key, filter, writeBatch, undefined, tables, writeCheckpoint));
  progress.finish();
  await out.finish(formatAuditManifestLine(manifest));
  return { records, headMismatches };
}

/** The audit public key `audit verify` checks with; one it cannot read names the options that choose it. */
function readVerifyKey(keyFile: string): KeyObject {
  try {
    return readAuditPublicKey(keyFile);
  } catch (error) {
    throw new InvalidParameterValue('--public-key', `cannot read the verifier's audit public key ${keyFile} (${(error as Error).message}): pass --public-key, or point --data-dir at the verifier's data folder`, { cause: error });
  }
}
