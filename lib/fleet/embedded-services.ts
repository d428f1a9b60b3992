import type { Logger } from 'pino';
import { createDatabase, type Database } from '../db/database-factory.js';
import { startRegistrar, type RunningRegistrar } from '../registrar/registrar-server.js';
import type { EkCheckMode } from '../registrar/registrar-config.js';
import { startVerifier, type RunningVerifier } from '../verifier/verifier-server.js';
import type { VerifierConfigInput } from '../verifier/verifier-config.js';

export interface EmbeddedServicesOptions {
  /** The services' data dir (CA in `<dataDir>/ca`, PGlite in `<dataDir>/pglite`). */
  readonly dataDir: string;
  /** PostgreSQL URL; absent = embedded PGlite. */
  readonly databaseUrl?: string;
  /** Schema to work in on PostgreSQL (it must exist). */
  readonly searchPath?: string;
  readonly registrar: boolean;
  readonly verifier: boolean;
  /** Registrar EK check: `off` for ECC software EKs (they carry no certificate). */
  readonly ekCheck: EkCheckMode;
  readonly ekCaDirs: readonly string[];
  /** Verifier settings besides `dataDir` (quote interval, …). */
  readonly verifierConfig?: Omit<VerifierConfigInput, 'dataDir'>;
  readonly logger?: Logger;
}

/** The registrar and/or verifier a fleet started for itself, on ephemeral ports. */
export interface EmbeddedServices {
  readonly registrar: RunningRegistrar | undefined;
  readonly verifier: RunningVerifier | undefined;
  readonly databaseKind: Database['kind'];
  close(): Promise<void>;
}

/**
 * Starts the services a fleet was not pointed at, in this process, on one shared database (PGlite
 * admits one opener per folder, so the two services share the handle; on PostgreSQL one pool serves
 * both). They share the data dir's CA, so the agents trust the verifier's client certificate and the
 * tenant's. Started one after the other: both create the CA on first use.
 */
export async function startEmbeddedServices(options: EmbeddedServicesOptions): Promise<EmbeddedServices> {
  const database = await createDatabase({
    dataDir: options.dataDir,
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
    ...(options.searchPath === undefined ? {} : { searchPath: options.searchPath }),
  });
  const logger = options.logger === undefined ? {} : { logger: options.logger };
  let registrar: RunningRegistrar | undefined;
  let verifier: RunningVerifier | undefined;
  try {
    if (options.registrar) {
      registrar = await startRegistrar(
        { dataDir: options.dataDir, port: 0, tlsPort: 0, ekCheck: options.ekCheck, ekCaDirs: [...options.ekCaDirs] },
        { database, ...logger },
      );
    }
    if (options.verifier) {
      verifier = await startVerifier({ ...options.verifierConfig, dataDir: options.dataDir, port: 0 }, { database, ...logger });
    }
  } catch (error) {
    await verifier?.close().catch(() => undefined);
    await registrar?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
  return {
    registrar,
    verifier,
    databaseKind: database.kind,
    async close() {
      await verifier?.close();
      await registrar?.close();
      await database.close();
    },
  };
}
