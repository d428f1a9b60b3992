import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, Option } from 'commander';
import { destination, pino } from 'pino';
import { redactUrl } from '../db/database-factory.js';
import { startFleet, startPushFleet, type RunningFleet } from '../fleet/fleet.js';
import type { FleetNode } from '../fleet/fleet-node.js';
import { MAX_FLEET_AGENTS } from '../fleet/fleet-options.js';
import { fleetSummary } from '../fleet/fleet-summary.js';
import { StopSignal } from '../fleet/stop-signal.js';
import { TerminalProgress } from './terminal-progress.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';

interface FleetCliOptions {
  readonly agents: number;
  readonly dataDir?: string;
  readonly registrar?: string;
  readonly registrarTls?: string;
  readonly verifier?: string;
  readonly database?: string;
  readonly quoteInterval: number;
  readonly basePort: number;
  readonly ek: 'ecc' | 'rsa';
  readonly ak?: 'ecc' | 'rsa';
  readonly imaRate: number;
  readonly report: number;
  readonly duration?: number;
  readonly logLevel: string;
  readonly push?: boolean;
  readonly pushTimeout?: number;
}

/**
 * `ironlime fleet`: serves N simulated nodes (real agent code on software TPMs, emulated boot and IMA
 * logs), registers them and enrols them for attestation, then runs until SIGTERM/SIGINT (or for
 * `--duration` seconds), printing a summary of the verifier's view every `--report` seconds. Without
 * `--registrar` / `--verifier` it starts its own in-process (docs/fleet.md). `--push`: push-model agents.
 */
export const registerFleetCommands: CommandRegistrar = (program, context) => {
  program
    .command('fleet')
    .description('simulate a fleet of attested nodes: N agents (pull, or push with --push) on software TPMs, registered and enrolled for attestation')
    .requiredOption('--agents <n>', `number of simulated agents (1 to ${MAX_FLEET_AGENTS})`, integer(1, MAX_FLEET_AGENTS))
    .option('--data-dir <dir>', "services' data dir (CA; in-process services' database); default a temporary folder removed at exit")
    .option('--registrar <url>', 'registrar registration URL, e.g. http://127.0.0.1:8890 (default: start one in-process)')
    .option('--registrar-tls <url>', "registrar TLS URL for the tenant (default: the registrar's host, port 8891)")
    .option('--verifier <url>', 'verifier URL, e.g. https://127.0.0.1:8881 (default: start one in-process)')
    .option('--database <url>', 'PostgreSQL URL for in-process services (default: embedded PGlite in the data dir)')
    .option('--quote-interval <s>', 'seconds between rounds of an in-process verifier', seconds, 2)
    .option('--push', 'simulate push-model agents: no port, each attests to the verifier on its own (docs/push.md)')
    .option('--push-timeout <s>', "an in-process verifier's push liveness timeout (default max(10, 5 × quote interval))", seconds)
    .option('--base-port <port>', 'agent i listens on base-port + i (default 0: any free ports)', integer(0, 65535), 0)
    .addOption(new Option('--ek <alg>', 'software TPM EK family: ecc (fast, no EK certificate) or rsa (~1 s per TPM)').choices(['ecc', 'rsa']).default('ecc'))
    .addOption(new Option('--ak <alg>', "software TPM AK family, default the EK's: rsa (RSA-2048, RSASSA as Keylime signs by default) or ecc (P-256, ECDSA)").choices(['ecc', 'rsa']))
    .option('--ima-rate <n>', 'known-good IMA entries per minute per agent', seconds, 3)
    .option('--report <s>', 'print a status summary every s seconds (0: never)', seconds, 30)
    .option('--duration <s>', 'stop after s seconds instead of waiting for a signal', seconds)
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['silent', 'error', 'warn', 'info', 'debug']).default('warn'))
    .action(async (options: FleetCliOptions) => {
      const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'ironlime-fleet-')));
      const print = (line: string): void => {
        process.stdout.write(`${line}\n`);
      };
      let fleet: RunningFleet<FleetNode> | undefined;
      // Caught from the start: a signal during start-up or the run leads to the same teardown.
      const stop = new StopSignal();
      const enrolling = new TerminalProgress('enrolling agents');
      try {
        fleet = await (options.push === true ? startPushFleet : startFleet)({
          agents: options.agents,
          dataDir,
          quoteInterval: options.quoteInterval,
          basePort: options.basePort,
          ekAlgorithm: options.ek,
          ...(options.ak === undefined ? {} : { akAlgorithm: options.ak }),
          imaEntriesPerMinute: options.imaRate,
          logger: pino({ level: options.logLevel }, destination(2)),
          progress: (line) => {
            enrolling.finish();
            print(line);
          },
          enrolled: (done, total) => enrolling.update(done, total),
          ...(options.registrar === undefined ? {} : { registrarUrl: options.registrar }),
          ...(options.registrarTls === undefined ? {} : { registrarTlsUrl: options.registrarTls }),
          ...(options.verifier === undefined ? {} : { verifierUrl: options.verifier }),
          ...(options.database === undefined ? {} : { databaseUrl: options.database }),
          ...(options.pushTimeout === undefined ? {} : { verifierConfig: { pushTimeout: options.pushTimeout } }),
          // A signal during enrolment starts no further agent and tears down what was started.
          signal: stop.abortSignal,
        });
        enrolling.finish();
        print(`fleet of ${fleet.agents.length} ${options.push === true ? 'push ' : ''}agents up: registrar ${fleet.registrarUrl}, verifier ${fleet.verifierUrl}, data dir ${dataDir}`);
        if (options.database !== undefined && fleet.services !== undefined) {
          print(`in-process services' database: ${redactUrl(options.database)}`);
        }
        if (stop.received === undefined) {
          await runFor(fleet, stop, options, print);
        }
      } catch (error) {
        // Stopped during the start: the fleet has torn itself down, as a stop after it would.
        if (!stop.abortSignal.aborted || error !== stop.abortSignal.reason) throw error;
        enrolling.finish();
      } finally {
        await fleet?.close();
        stop.dispose();
        if (options.dataDir === undefined) {
          await rm(dataDir, { recursive: true, force: true });
        }
      }
      print('fleet stopped');
      context.setExitCode(EXIT_VALID);
    });
};

/** Waits for a signal or `--duration`, printing summaries every `--report` seconds. */
async function runFor(fleet: RunningFleet<FleetNode>, stop: StopSignal, options: FleetCliOptions, print: (line: string) => void): Promise<void> {
  const ids = fleet.agents.map((agent) => agent.uuid);
  let stopping = false;
  const printUnlessStopping = (line: string): void => {
    if (!stopping) {
      print(line);
    }
  };
  const report = (): void => {
    fleetSummary(fleet.tenant, ids).then(printUnlessStopping, (error: unknown) => printUnlessStopping(`status unavailable: ${String(error)}`));
  };
  const reporter = options.report > 0 ? setInterval(report, options.report * 1000) : undefined;
  try {
    await stop.wait(options.duration === undefined ? undefined : options.duration * 1000);
    stopping = true;
    print(await fleetSummary(fleet.tenant, ids));
  } finally {
    stopping = true;
    clearInterval(reporter);
  }
}

function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    if (!/^[0-9]{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return Number(text);
  };
}

function seconds(text: string): number {
  if (!/^[0-9]{1,6}(\.[0-9]{1,3})?$/.test(text)) {
    throw new InvalidArgumentError('must be a non-negative number of seconds');
  }
  return Number(text);
}
