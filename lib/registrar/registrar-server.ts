import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import { container as rootContainer, instanceCachingFactory, Lifecycle, type DependencyContainer } from 'tsyringe';
import { createDatabase, type Database } from '../db/database-factory.js';
import { DATABASE } from '../db/database-token.js';
import { migrateLatest } from '../db/migrate.js';
import { SERVER_API_VERSIONS, serverApiVersionPolicy } from '../http/api-version.js';
import { createService, type KeylimeService } from '../http/keylime-service.js';
import { CertificateRenewal, type RenewalTiming } from '../pki/certificate-renewal.js';
import { DATA_DIR_CA_ORIGIN, loadOrCreateServiceTls } from '../pki/service-tls.js';
import { EkTrust } from './ek-trust.js';
import { RegistrarAgentRepository } from './registrar-agent-repository.js';
import { buildRegistrarConfig, type RegistrarConfig } from './registrar-config.js';
import { registerRegistrarRoutes } from './registrar-routes.js';
import { RegistrarService } from './registrar-service.js';
import { REGISTRAR_CONFIG, REGISTRAR_LOGGER } from './registrar-tokens.js';

/** Registrar settings as given by a caller: `dataDir` plus any fields of `RegistrarConfig` to override. */
export type RegistrarConfigInput = Partial<RegistrarConfig> & { readonly dataDir: string };

export interface StartRegistrarOptions {
  /** Default: silent. The CLI passes a pino logger on stderr. */
  readonly logger?: Logger;
  /** Receives each "registrar listening on <url>" line. */
  readonly announce?: (line: string) => void;
  /** The container to derive the registrar's child container from (default tsyringe's root). */
  readonly parent?: DependencyContainer;
  /**
   * An open database to use instead of opening `databaseUrl` / PGlite (tests, or several services in
   * one process). It is migrated but not closed by `close()`: its owner closes it.
   */
  readonly database?: Database;
  /** Tests of certificate renewal: a short margin and lifetime instead of 30 and 365 days. */
  readonly renewalForTests?: RenewalTiming;
}

/** A running registrar. */
export interface RunningRegistrar {
  /** Plain-HTTP registration port, e.g. `http://127.0.0.1:8890`. */
  readonly httpUrl: string;
  /** TLS port (registration + mTLS admin), e.g. `https://127.0.0.1:8891`. */
  readonly tlsUrl: string;
  /** PEM of the CA that issued the TLS certificate and that admin client certificates must chain to. */
  readonly caCert: string;
  readonly config: Readonly<RegistrarConfig>;
  readonly databaseKind: Database['kind'];
  /** The registrar's own child container (RegistrarService, repository, config, database). */
  readonly container: DependencyContainer;
  /** Stops both listeners (waiting for requests in flight), then closes the database it opened. */
  close(): Promise<void>;
}

/** API versions the registrar serves: Keylime's 2.x (1.0 is deprecated and lacks `mtls_cert`). */
const REGISTRAR_API_VERSIONS = SERVER_API_VERSIONS.filter((version) => version.startsWith('2.'));

/**
 * Starts a registrar from `input` (validated and frozen first; a bad setting throws `InvalidConfig`
 * before anything is created). Zero-config: creates what the data dir lacks — the CA and the
 * registrar's TLS certificate (`<dataDir>/ca`), the embedded PGlite database when no `databaseUrl` is
 * given — and applies pending migrations. Loads the EK CA store, then listens on the plain-HTTP and
 * the TLS port. Anything opened before a failure is closed again.
 */
export async function startRegistrar(
  input: RegistrarConfigInput,
  options: StartRegistrarOptions = {},
): Promise<RunningRegistrar> {
  const config = buildRegistrarConfig(input);
  const log = options.logger ?? pino({ level: 'silent' });
  const ekTrust = EkTrust.load(config.ekCheck, config.ekCaDirs, log);
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const timing = options.renewalForTests ?? {};
  const tls = await loadOrCreateServiceTls({ dataDir: config.dataDir, serviceName: 'registrar', sans: config.tlsSans, warn: (message) => log.warn(message), ...timing });
  const database =
    options.database ??
    (await createDatabase({
      dataDir: config.dataDir,
      ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }),
    }));
  const ownsDatabase = options.database === undefined;
  const closeDatabase = (): Promise<void> => (ownsDatabase ? database.close() : Promise.resolve());
  const opened: { close(): Promise<void> }[] = [];
  try {
    await migrateLatest(database.knex);
    const container = createRegistrarContainer(config, database, ekTrust, log, options.parent);
    const common = {
      name: 'registrar',
      apiVersions: serverApiVersionPolicy(REGISTRAR_API_VERSIONS),
      bodyLimit: config.bodyLimit,
      logger: log,
    };
    const plain = createService(common);
    const secure = createService({
      ...common,
      // spec §0.3: the handshake succeeds without a client certificate; admin routes then demand one.
      tls: { cert: tls.cert, key: tls.key, ca: tls.ca, clientCaOrigin: DATA_DIR_CA_ORIGIN, requestClientCert: true, requireClientCert: 'routes' },
    });
    const services: KeylimeService[] = [plain, secure];
    for (const service of services) {
      registerRegistrarRoutes(service, container);
    }
    const announce = options.announce ?? ((): void => undefined);
    const httpAddress = await plain.listen({ host: config.host, port: config.port, announce });
    opened.push(plain);
    const tlsAddress = await secure.listen({ host: config.host, port: config.tlsPort, announce, portSetting: 'tlsPort' });
    opened.push(secure);
    const renewal = new CertificateRenewal({
      dataDir: config.dataDir,
      ...timing,
      certificates: [{ serviceName: 'registrar', type: 'server', sans: config.tlsSans, initial: tls, use: (renewed) => secure.useCertificate(renewed) }],
      log,
    });
    renewal.start();
    log.info({ ekCheck: config.ekCheck, trustedEkCas: ekTrust.size, database: database.kind }, 'registrar ready');
    return {
      httpUrl: httpAddress.url,
      tlsUrl: tlsAddress.url,
      caCert: tls.ca,
      config,
      databaseKind: database.kind,
      container,
      close: async () => {
        await renewal.close();
        await Promise.all(services.map((service) => service.close()));
        await closeDatabase();
      },
    };
  } catch (error) {
    await Promise.all(opened.map((service) => service.close().catch(() => undefined)));
    await closeDatabase().catch(() => undefined);
    throw error;
  }
}

/**
 * The registrar's child container: its frozen config, logger, database, EK trust store, repository
 * and service — nothing is registered in the parent, so two registrars in one process stay apart.
 */
export function createRegistrarContainer(
  config: Readonly<RegistrarConfig>,
  database: Database,
  ekTrust: EkTrust,
  log: Logger,
  parent: DependencyContainer = rootContainer,
): DependencyContainer {
  const child = parent.createChildContainer();
  child.register(REGISTRAR_CONFIG, { useValue: config });
  child.register(REGISTRAR_LOGGER, { useValue: log });
  child.register(DATABASE, { useValue: database });
  child.register(EkTrust, { useValue: ekTrust });
  child.register(RegistrarAgentRepository, {
    useFactory: instanceCachingFactory(
      (c) =>
        new RegistrarAgentRepository(c.resolve(DATABASE).knex, {
          maxAgentsPerEk: config.maxAgentsPerEk,
          inactiveTtlSeconds: config.inactiveRegistrationTtl,
          maxAgentsPerNonTpmMode: config.maxAgentsPerNonTpmMode,
        }),
    ),
  });
  child.register(RegistrarService, { useClass: RegistrarService }, { lifecycle: Lifecycle.Singleton });
  return child;
}
