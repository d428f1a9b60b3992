import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import { InvalidConfig } from '../../interfaces/errors.js';
import { readConfiguredFile, readConfiguredPrivateFile } from '../config/read-config-file.js';
import { pino, type Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { loadOrCreateAuditKey } from '../audit/audit-signing-key.js';
import { BROKER_AUDIT_TABLES } from '../audit/audit-tables.js';
import { createDatabase, type Database } from '../db/database-factory.js';
import { migrateLatest } from '../db/migrate.js';
import { SERVER_API_VERSIONS, serverApiVersionPolicy } from '../http/api-version.js';
import { createService } from '../http/keylime-service.js';
import { CertificateRenewal, type RenewalTiming } from '../pki/certificate-renewal.js';
import { DATA_DIR_CA_ORIGIN, loadOrCreateServiceTls } from '../pki/service-tls.js';
import { tlsFileProblem } from '../pki/tls-file-contents.js';
import { buildBrokerConfig, type BrokerConfig } from './broker-config.js';
import { loadOrCreateBrokerKeys } from './broker-keys.js';
import { BrokerRepository } from './broker-repository.js';
import { registerBrokerRoutes } from './broker-routes.js';
import { BrokerService } from './broker-service.js';
import { EarTokenIssuer } from './ear-token.js';
import { EarTokenVerifier } from './ear-token-verifier.js';
import { ResourceVault } from './resource-vault.js';
import { SessionCookies } from './session-cookie.js';
import { loadTrustedIssuer, requireDistinctIssuers, type TrustedIssuer } from './trusted-issuers.js';
import { revocationVerifyKey } from '../revocation/revocation-signature.js';
import { VerifierClient } from '../verifier/verifier-client.js';
import { VerifierStanding, type StandingCheck } from './verifier-standing.js';

export type BrokerConfigInput = Partial<BrokerConfig> & { readonly dataDir: string };

export interface StartBrokerOptions {
  readonly logger?: Logger;
  readonly announce?: (line: string) => void;
  /** The good-standing check, in process (tests); default: from `verifierUrl`, else none. */
  readonly standing?: StandingCheck;
  /** An open database to use (not closed by `close()`). */
  readonly database?: Database;
  /** The schema is current (a cluster's primary applied the migrations): do not run them here. */
  readonly migrated?: boolean;
  /** Tests of certificate renewal: a short margin and lifetime instead of 30 and 365 days. */
  readonly renewalForTests?: RenewalTiming;
}

export interface RunningBroker {
  /** `https://127.0.0.1:8080`; the KBS API is under `<url>/kbs/v0`. */
  readonly url: string;
  /** PEM of the CA that issued the TLS certificate; admin client certificates must chain to it. */
  readonly caCert: string;
  /** The public JWKS of this broker's token key (give it to brokers with `--trust-issuer`). */
  readonly jwksPath: string;
  readonly config: Readonly<BrokerConfig>;
  readonly databaseKind: Database['kind'];
  /** The decisions, for in-process callers (revocation, provisioning). */
  readonly service: BrokerService;
  close(): Promise<void>;
}

/** How often expired sessions are deleted. */
const SWEEP_INTERVAL_MS = 60_000;

/** The request header block at most: a 16,384-character bearer token and 16 KiB for the rest. */
const BROKER_MAX_HEADER_BYTES = 32 * 1024;

/**
 * Starts the KBS resource broker, zero-config like the other services: the data folder gets a CA and
 * TLS certificate, the resource master key and the token signing key, and (without `databaseUrl`) an
 * embedded PGlite database; migrations are applied; HTTPS with admin routes behind client
 * certificates from that CA. Tokens are accepted from this broker's own key and from each
 * `trustIssuers` entry. Anything opened before a failure is closed again.
 */
export async function startBroker(input: BrokerConfigInput, options: StartBrokerOptions = {}): Promise<RunningBroker> {
  const config = buildBrokerConfig(input);
  const log = options.logger ?? pino({ level: 'silent' });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const trusted: TrustedIssuer[] = [];
  for (const spec of config.trustIssuers) {
    trusted.push(await loadTrustedIssuer(spec));
  }
  requireDistinctIssuers(trusted, config.issuer);
  const revocationKey =
    config.revocationCert === undefined ? undefined : revocationVerifyKey(await readConfiguredFile(config.revocationCert, 'broker.revocationCert'));
  // Read once: the standing check presents it, and the renewal timer warns before it ends.
  const verifierCert = config.verifierCert === undefined ? undefined : await readConfiguredFile(config.verifierCert, 'broker.verifierCert');
  const ownStanding = options.standing === undefined ? await verifierStanding(config, verifierCert) : undefined;
  const standing = options.standing ?? ownStanding;
  const keys = await loadOrCreateBrokerKeys(config.dataDir, config.issuer);
  trusted.push({ issuer: config.issuer, keys: [keys.tokenPublicKey] });
  const timing = options.renewalForTests ?? {};
  const tls = await loadOrCreateServiceTls({ dataDir: config.dataDir, serviceName: 'broker', sans: config.tlsSans, warn: (message) => log.warn(message), ...timing });
  const database =
    options.database ??
    (await createDatabase({ dataDir: config.dataDir, ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }) }));
  const closeDatabase = (): Promise<void> => (options.database === undefined ? database.close() : Promise.resolve());
  let sweeper: NodeJS.Timeout | undefined;
  const versions = serverApiVersionPolicy(SERVER_API_VERSIONS);
  const service = createService({
    name: 'broker',
    apiVersions: versions,
    bodyLimit: config.bodyLimit,
    logger: log,
    tls: { cert: tls.cert, key: tls.key, ca: tls.ca, clientCaOrigin: DATA_DIR_CA_ORIGIN, requestClientCert: true, requireClientCert: 'routes' },
    // Room for a bearer token at its limit beside the other headers, so one over it is refused as a token (broker-routes.ts).
    maxHeaderBytes: BROKER_MAX_HEADER_BYTES,
  });
  try {
    if (options.migrated !== true) {
      await migrateLatest(database.knex);
    }
    const broker = new BrokerService({
      // Admin changes and revocations are appended to the broker's own signed audit log with the change (docs/audit.md).
      repository: new BrokerRepository(database.knex, database.kind === 'postgres', new AuditLog(database.knex, loadOrCreateAuditKey(config.dataDir), BROKER_AUDIT_TABLES)),
      vault: new ResourceVault(keys.masterKey),
      issuer: new EarTokenIssuer({
        issuer: config.issuer,
        ...(config.audience === undefined ? {} : { audience: config.audience }),
        lifetimeSeconds: config.tokenLifetimeSeconds,
        privateKey: keys.tokenPrivateKey,
        publicKey: keys.tokenPublicKey,
      }),
      tokens: new EarTokenVerifier({
        issuers: trusted,
        ...(config.audience === undefined ? {} : { audience: config.audience }),
        maxLifetimeSeconds: config.maxTokenLifetimeSeconds,
      }),
      cookies: new SessionCookies(keys.masterKey, config.sessionTimeoutSeconds * 1000),
      log,
      ...(standing === undefined ? {} : { standing }),
    });
    await registerBrokerRoutes(service.app, broker, {
      ...(revocationKey === undefined ? {} : { revocationKey }),
      insecureAdmin: false,
      sessionTimeoutSeconds: config.sessionTimeoutSeconds,
      bodyLimit: config.bodyLimit,
    });
    const address = await service.listen({ host: config.host, port: config.port, ...(options.announce === undefined ? {} : { announce: options.announce }) });
    sweeper = setInterval(() => {
      broker.sweepSessions().catch((error: unknown) => log.warn({ err: error }, 'session sweep failed'));
    }, SWEEP_INTERVAL_MS);
    sweeper.unref();
    // In a cluster every worker renews its own server's certificate; the lock lets one issue it and the others reuse it.
    const renewal = new CertificateRenewal({
      dataDir: config.dataDir,
      ...timing,
      certificates: [{ serviceName: 'broker', type: 'server', sans: config.tlsSans, initial: tls, use: (renewed) => service.useCertificate(renewed) }],
      ...(verifierCert === undefined ? {} : { operatorCertificates: [{ what: `broker.verifierCert ${config.verifierCert}`, cert: verifierCert }] }),
      log,
    });
    renewal.start();
    log.info({ issuer: config.issuer, trustedIssuers: trusted.map((t) => t.issuer), database: database.kind }, 'broker ready');
    return {
      url: address.url,
      caCert: tls.ca,
      jwksPath: keys.jwksPath,
      config,
      databaseKind: database.kind,
      service: broker,
      close: async () => {
        await renewal.close();
        clearInterval(sweeper);
        ownStanding?.close();
        await service.close();
        await closeDatabase();
      },
    };
  } catch (error) {
    clearInterval(sweeper);
    ownStanding?.close();
    await service.close().catch(() => undefined);
    await closeDatabase().catch(() => undefined);
    throw error;
  }
}

/** The broker setting naming each of the TLS files of its verifier client. */
const TLS_FILE_FIELDS = { ca: 'verifierCa', cert: 'verifierCert', key: 'verifierKey' } as const;

/** The good-standing check against `verifierUrl` with the configured CA and client certificate (`cert`, read already), if any. */
async function verifierStanding(config: Readonly<BrokerConfig>, cert: string | undefined): Promise<StandingCheck | undefined> {
  if (config.verifierUrl === undefined) {
    return undefined;
  }
  const file = (value: string | undefined, field: string, read = readConfiguredFile): Promise<string | undefined> =>
    value === undefined ? Promise.resolve(undefined) : read(value, `broker.${field}`);
  const [ca, key] = await Promise.all([file(config.verifierCa, 'verifierCa'), file(config.verifierKey, 'verifierKey', readConfiguredPrivateFile)]);
  const tls = { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidConfig(cert === undefined ? 'broker.verifierCert' : 'broker.verifierKey', `is needed with ${cert === undefined ? 'broker.verifierKey' : 'broker.verifierCert'}: the client certificate and its key go together`);
  }
  // Checked at start, naming the setting: a key of another certificate was an OpenSSL stack trace.
  const problem = tlsFileProblem(tls);
  if (problem !== undefined) {
    const field = TLS_FILE_FIELDS[problem.file];
    throw new InvalidConfig(`broker.${field}`, `${config[field] as string} ${problem.detail}`);
  }
  return new VerifierStanding(new VerifierClient({ baseUrl: config.verifierUrl, tls }));
}
