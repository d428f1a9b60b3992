import path from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { destination, pino } from 'pino';
import { caDirOf } from '../pki/service-tls.js';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { EK_CHECK_MODES, loadRegistrarConfig } from '../registrar/registrar-config.js';
import { startRegistrar } from '../registrar/registrar-server.js';
import type { CommandRegistrar } from './cli-context.js';
import { collect, port } from './option-parsers.js';
import { databaseFact, serveUntilSignal } from './service-command.js';

interface RegistrarOptions {
  readonly config?: string;
  readonly dataDir?: string;
  readonly host?: string;
  readonly port?: number;
  readonly tlsPort?: number;
  readonly database?: string;
  readonly ekCheck?: string;
  readonly ekCaDir: string[];
  readonly tlsSan: string[];
  readonly bodyLimit?: number;
  readonly logLevel: string;
}

/**
 * `ironlime registrar`: runs a Keylime-compatible registrar until SIGTERM/SIGINT. Zero-config: the
 * data folder gets a CA, the registrar's TLS certificate and (without `--database`) an embedded
 * PGlite database on first start. Settings: defaults < `--config` file < `IRONLIME_REGISTRAR_*`
 * variables < options (docs/registrar.md).
 */
export const registerRegistrarCommands: CommandRegistrar = (program, context) => {
  program
    .command('registrar')
    .description('run the registrar: agent registration on HTTP (8890), plus mTLS admin routes on TLS (8891)')
    .option('--data-dir <dir>', 'data folder: CA, TLS certificate, embedded database (required, or config/env)')
    .option('--config <file>', 'JSON file with registrar settings (see docs/registrar.md)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'plain-HTTP registration port (default 8890)', port)
    .option('--tls-port <port>', 'TLS port (default 8891)', port)
    .option('--database <url>', 'PostgreSQL URL (default: embedded PGlite in the data folder)')
    .addOption(new Option('--ek-check <mode>', 'EK certificate check at registration (default require)').choices(EK_CHECK_MODES))
    .option('--ek-ca-dir <dir>', 'extra trusted EK CA folder, added to the vendor store (repeatable)', collect, [])
    .option('--tls-san <name>', 'extra DNS name or IP for the TLS certificate (repeatable)', collect, [])
    .option('--body-limit <bytes>', 'largest request body (default 262144)', positiveInteger)
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['silent', 'error', 'warn', 'info', 'debug']).default('info'))
    .action(async (options: RegistrarOptions) => {
      const config = loadRegistrarConfig({
        ...(options.config === undefined ? {} : { file: options.config }),
        env: process.env,
        overrides: {
          dataDir: options.dataDir,
          host: options.host,
          port: options.port,
          tlsPort: options.tlsPort,
          databaseUrl: options.database,
          ekCheck: options.ekCheck,
          ekCaDirs: options.ekCaDir.length > 0 ? options.ekCaDir : undefined,
          tlsSans: options.tlsSan.length > 0 ? options.tlsSan : undefined,
          bodyLimit: options.bodyLimit,
        },
      });
      const running = await startRegistrar(config, {
        logger: pino({ level: options.logLevel }, destination(2)),
        announce: (line) => process.stdout.write(`${line}\n`),
      });
      const database = databaseFact(running.databaseKind, config.dataDir, config.databaseUrl);
      await serveUntilSignal(context, 'registrar', running, [
        `registrar CA certificate (admin clients and TLS peers): ${path.join(caDirOf(config.dataDir), CA_CERT_FILE)}`,
        `registrar database: ${database}`,
        `registrar EK certificate check: ${config.ekCheck}`,
      ]);
    });
};

function positiveInteger(text: string): number {
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) === 0) {
    throw new InvalidArgumentError('must be a positive integer');
  }
  return Number(text);
}
