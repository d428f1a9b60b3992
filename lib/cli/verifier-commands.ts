import path from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { destination, pino } from 'pino';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { caDirOf } from '../pki/service-tls.js';
import { loadVerifierConfig, MB_EVALUATE_MODES, MB_POLICY_NAMES } from '../verifier/verifier-config.js';
import { startVerifier } from '../verifier/verifier-server.js';
import type { CommandRegistrar } from './cli-context.js';
import { collect, port } from './option-parsers.js';
import { databaseFact, serveUntilSignal } from './service-command.js';

interface VerifierOptions {
  readonly config?: string;
  readonly dataDir?: string;
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly verifierId?: string;
  readonly instanceId?: string;
  readonly quoteInterval?: number;
  readonly retryInterval?: number;
  readonly maxRetries?: number;
  readonly exponentialBackoff?: boolean;
  readonly dashboard?: boolean;
  readonly requestTimeout?: number;
  readonly maxConcurrentRounds?: number;
  readonly leaseSeconds?: number;
  readonly historyRetentionDays?: number;
  readonly auditRetentionDays?: number;
  readonly staleAfter?: number;
  readonly revocationWebhook: string[];
  readonly revocationWebhookCa?: string;
  readonly measuredBootPolicy?: string;
  readonly measuredBootEvaluate?: string;
  readonly tlsSan: string[];
  readonly logLevel: string;
}

/**
 * `ironlime verifier`: runs a Keylime-compatible verifier (HTTPS, mTLS admin routes) and its pull loop
 * until SIGTERM/SIGINT. Zero-config: the data folder gets a CA, the verifier's TLS and client
 * certificates and (without `--database`) an embedded PGlite database on first start. Settings:
 * defaults < `--config` file < `IRONLIME_VERIFIER_*` variables < options (docs/verifier.md).
 */
export const registerVerifierCommands: CommandRegistrar = (program, context) => {
  program
    .command('verifier')
    .description('run the verifier: Keylime v2 API on HTTPS (8881) and the pull loop polling enrolled agents')
    .option('--data-dir <dir>', 'data folder: CA, certificates, instance id, embedded database (required, or config/env)')
    .option('--config <file>', 'JSON file with verifier settings (see docs/verifier.md)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'HTTPS port (default 8881)', port)
    .option('--database <url>', 'PostgreSQL URL (default: embedded PGlite in the data folder)')
    .option('--verifier-id <id>', 'Keylime [verifier] uuid: which agents this verifier polls (default "default")')
    .option('--instance-id <id>', "this process's lease owner name (default: stored in the data folder)")
    .option('--quote-interval <seconds>', 'seconds between rounds (default 2)', seconds)
    .option('--retry-interval <seconds>', 'seconds before a retry (default 2)', seconds)
    .option('--max-retries <n>', 'retries before an unreachable agent is Failed (default 5)', count)
    .option('--no-exponential-backoff', 'retry every --retry-interval instead of retry-interval ** n')
    .option('--request-timeout <seconds>', 'per request to an agent (default 60)', seconds)
    .option('--max-concurrent-rounds <n>', 'rounds in flight at once (default 128)', count)
    .option('--lease-seconds <seconds>', 'how long a claim on an agent lasts without renewal (default 30)', seconds)
    .option('--history-retention-days <days>', 'delete passing and retried rounds from the verdict history after this many days; failures are kept (default 0: keep all)', days)
    .option('--audit-retention-days <days>', 'delete passing verdicts from the signed audit log after this many days, a signed checkpoint in their place; failures and admin actions are kept (default 0: keep all)', days)
    .option('--stale-after <seconds>', 'age of the last success past which status is no longer PASS (default 2 intervals + retry budget)', seconds)
    .addOption(new Option('--measured-boot-policy <name>', 'policy judging refstates (default example)').choices(MB_POLICY_NAMES))
    .addOption(new Option('--measured-boot-evaluate <when>', 'evaluate the refstate once or on every round (default once)').choices(MB_EVALUATE_MODES))
    .option('--revocation-webhook <url>', 'POST signed revocation messages here when an agent fails (repeatable)', collect, [])
    .option('--revocation-webhook-ca <file>', "PEM CA of HTTPS webhooks (e.g. a broker's ca/cacert.crt); default system roots")
    .option('--no-dashboard', 'do not serve the web dashboard at /dashboard')
    .option('--tls-san <name>', 'extra DNS name or IP for the TLS certificate (repeatable)', collect, [])
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['silent', 'error', 'warn', 'info', 'debug']).default('info'))
    .action(async (options: VerifierOptions) => {
      const config = loadVerifierConfig({
        ...(options.config === undefined ? {} : { file: options.config }),
        env: process.env,
        overrides: {
          dataDir: options.dataDir,
          host: options.host,
          port: options.port,
          databaseUrl: options.database,
          verifierId: options.verifierId,
          instanceId: options.instanceId,
          quoteInterval: options.quoteInterval,
          retryInterval: options.retryInterval,
          maxRetries: options.maxRetries,
          // commander sets true by default for a --no-… flag: only an explicit --no-exponential-backoff overrides.
          exponentialBackoff: options.exponentialBackoff === false ? false : undefined,
          dashboard: options.dashboard === false ? false : undefined,
          requestTimeout: options.requestTimeout,
          maxConcurrentRounds: options.maxConcurrentRounds,
          leaseSeconds: options.leaseSeconds,
          historyRetentionDays: options.historyRetentionDays,
          auditRetentionDays: options.auditRetentionDays,
          staleAfter: options.staleAfter,
          measuredBootPolicy: options.measuredBootPolicy,
          measuredBootEvaluate: options.measuredBootEvaluate,
          tlsSans: options.tlsSan.length > 0 ? options.tlsSan : undefined,
          revocationWebhooks: options.revocationWebhook.length > 0 ? options.revocationWebhook : undefined,
          revocationWebhookCa: options.revocationWebhookCa,
        },
      });
      const running = await startVerifier(config, {
        logger: pino({ level: options.logLevel }, destination(2)),
        announce: (line) => process.stdout.write(`${line}\n`),
      });
      const database = databaseFact(running.databaseKind, config.dataDir, config.databaseUrl);
      await serveUntilSignal(context, 'verifier', running, [
        `verifier CA certificate (admin clients; agents trust it for the verifier's client certificate): ${path.join(caDirOf(config.dataDir), CA_CERT_FILE)}`,
        `verifier database: ${database}`,
        `verifier id ${config.verifierId}, instance ${running.owner}: polling ${running.scheduler.size} agent(s)`,
      ]);
    });
};

function days(text: string): number {
  if (!/^[0-9]{1,5}(\.[0-9]{1,3})?$/.test(text)) {
    throw new InvalidArgumentError('must be a number of days');
  }
  return Number(text);
}

function seconds(text: string): number {
  if (!/^[0-9]{1,6}(\.[0-9]{1,3})?$/.test(text)) {
    throw new InvalidArgumentError('must be a number of seconds');
  }
  return Number(text);
}

function count(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) {
    throw new InvalidArgumentError('must be a non-negative integer');
  }
  return Number(text);
}
