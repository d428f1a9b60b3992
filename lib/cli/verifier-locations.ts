import { loadConfig } from '../config/load-config.js';

/**
 * Where the commands that read a verifier's own files and database (`token issue`, `audit export`,
 * `audit verify`) find them when no option names them: as `ironlime verifier` chooses its own
 * (`$IRONLIME_VERIFIER_DATA_DIR`, `$IRONLIME_VERIFIER_DATABASE_URL`), then the general settings. An
 * operator who set only the verifier's variables would otherwise read another folder or database.
 */
export function verifierDataDir(option: string | undefined): string {
  return option ?? fromEnv('IRONLIME_VERIFIER_DATA_DIR') ?? loadConfig({ env: process.env }).dataDir;
}

/** The verifier's PostgreSQL URL, or undefined for PGlite in its data folder. */
export function verifierDatabaseUrl(option: string | undefined): string | undefined {
  return option ?? fromEnv('IRONLIME_VERIFIER_DATABASE_URL') ?? loadConfig({ env: process.env }).databaseUrl;
}

function fromEnv(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}
