import cluster from 'node:cluster';
import path from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { destination, pino } from 'pino';
import { loadBrokerConfig } from '../broker/broker-config.js';
import { defaultBrokerWorkers, runBrokerWorker, startBrokerCluster } from '../broker/broker-cluster.js';
import { startBroker } from '../broker/broker-server.js';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { caDirOf } from '../pki/service-tls.js';
import type { CommandRegistrar } from './cli-context.js';
import { collect, integerBetween, port } from './option-parsers.js';
import { databaseFact, serveUntilSignal } from './service-command.js';

interface BrokerOptions {
  readonly config?: string;
  readonly dataDir?: string;
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly issuer?: string;
  readonly audience?: string;
  readonly tokenLifetime?: number;
  readonly trustIssuer: string[];
  readonly tlsSan: string[];
  readonly revocationCert?: string;
  readonly verifier?: string;
  readonly verifierCa?: string;
  readonly verifierCert?: string;
  readonly verifierKey?: string;
  readonly workers?: number;
  readonly logLevel: string;
}

/**
 * `ironlime broker`: the KBS resource broker (docs/broker.md) until SIGTERM/SIGINT. Zero-config: the
 * data folder gets a CA, TLS certificate, resource master key, token signing key and (without
 * `--database`) an embedded PGlite database. Settings: defaults < `--config` < `IRONLIME_BROKER_*` < options.
 * With PostgreSQL it runs one worker process per core on one port (`--workers N`, `startBrokerCluster`);
 * a worker re-runs this command under `node:cluster` and serves as `runBrokerWorker`.
 */
export const registerBrokerCommands: CommandRegistrar = (program, context) => {
  program
    .command('broker')
    .description('run the KBS resource broker (HTTPS 8080): secrets only for attested nodes, background check and passport')
    .option('--data-dir <dir>', 'data folder: CA, TLS certificate, keys, embedded database (required, or config/env)')
    .option('--config <file>', 'JSON file with broker settings (see docs/broker.md)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'HTTPS port (default 8080)', port)
    .option('--database <url>', 'PostgreSQL URL (default: embedded PGlite in the data folder)')
    .option('--issuer <name>', 'iss of the EAR tokens this broker issues (default ironlime-broker)')
    .option('--audience <aud>', 'aud put into issued tokens and required in accepted ones')
    .option('--token-lifetime <seconds>', 'lifetime of issued tokens, 10 to 3600 (default 300)', integerBetween(10, 3600))
    .option('--trust-issuer <[ISSUER=]FILE>', 'accept tokens of another issuer: its JWKS or PEM certificate (repeatable)', collect, [])
    .option('--revocation-cert <file>', "verifier's revocation certificate: accept its signed revocation messages at POST /kbs/v0/revocation")
    .option('--verifier <url>', 'continuous verifier asked by resources whose policy has verifier_standing')
    .option('--verifier-ca <file>', "PEM CA of the verifier's TLS certificate")
    .option('--verifier-cert <file>', 'PEM client certificate from the verifier\'s CA (GET /agents needs it)')
    .option('--verifier-key <file>', 'PEM key of that client certificate')
    .option('--workers <n>', 'worker processes sharing the port (default: one per core with --database, else 1)', workerCount)
    .option('--tls-san <name>', 'extra DNS name or IP for the TLS certificate (repeatable)', collect, [])
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['silent', 'error', 'warn', 'info', 'debug']).default('info'))
    .action(async (options: BrokerOptions) => {
      const logger = pino({ level: options.logLevel }, destination(2));
      if (cluster.isWorker) {
        await runBrokerWorker({ logger });
        return;
      }
      const config = loadBrokerConfig({
        ...(options.config === undefined ? {} : { file: options.config }),
        env: process.env,
        overrides: {
          dataDir: options.dataDir,
          host: options.host,
          port: options.port,
          databaseUrl: options.database,
          issuer: options.issuer,
          audience: options.audience,
          tokenLifetimeSeconds: options.tokenLifetime,
          trustIssuers: options.trustIssuer.length > 0 ? options.trustIssuer : undefined,
          tlsSans: options.tlsSan.length > 0 ? options.tlsSan : undefined,
          revocationCert: options.revocationCert,
          verifierUrl: options.verifier,
          verifierCa: options.verifierCa,
          verifierCert: options.verifierCert,
          verifierKey: options.verifierKey,
        },
      });
      const announce = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      const workers = options.workers ?? (config.databaseUrl === undefined ? 1 : defaultBrokerWorkers());
      const running =
        workers === 1 ? await startBroker(config, { logger, announce }) : await startBrokerCluster(config, { workers, logger, announce });
      const database = databaseFact(config.databaseUrl === undefined ? 'pglite' : 'postgres', config.dataDir, config.databaseUrl);
      await serveUntilSignal(context, 'broker', running, [
        `broker CA certificate (clients and admin certificates): ${path.join(caDirOf(config.dataDir), CA_CERT_FILE)}`,
        `broker token issuer: ${config.issuer}; its JWKS for --trust-issuer: ${running.jwksPath}`,
        `broker trusts tokens from: ${[config.issuer, ...config.trustIssuers].join(', ')}`,
        `broker database: ${database}`,
      ]);
    });
};

/** Commander parser for `--workers`: 1 to 64 processes. */
function workerCount(text: string): number {
  if (!/^[0-9]{1,2}$/.test(text) || Number(text) < 1 || Number(text) > 64) {
    throw new InvalidArgumentError('must be a number of processes from 1 to 64');
  }
  return Number(text);
}
