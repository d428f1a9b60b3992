import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { InvalidConfig } from '../../interfaces/errors.js';
import { createDatabase } from '../db/database-factory.js';
import { migrateLatest } from '../db/migrate.js';
import { loadOrCreateServiceTls } from '../pki/service-tls.js';
import { buildBrokerConfig, type BrokerConfig } from './broker-config.js';
import { loadOrCreateBrokerKeys } from './broker-keys.js';
import { startBroker, type BrokerConfigInput, type RunningBroker } from './broker-server.js';

/** The environment variable a worker reads its settings from (JSON, set by the primary). */
const WORKER_SETTINGS_ENV = 'IRONLIME_BROKER_WORKER_SETTINGS';

interface WorkerSettings {
  readonly config: BrokerConfig;
  readonly searchPath?: string;
}

type WorkerMessage =
  | { readonly brokerReady: { readonly url: string } }
  | { readonly brokerCpu: NodeJS.CpuUsage };

export interface BrokerClusterOptions {
  /** Worker processes; default: one per core (`os.availableParallelism()`). More than one needs PostgreSQL. */
  readonly workers?: number;
  readonly logger?: Logger;
  readonly announce?: (line: string) => void;
  /** PostgreSQL schema to work in (benchmarks and tests on a shared database). */
  readonly searchPath?: string;
  /** The script workers run (it must call `runBrokerWorker`); default: this process's main script again. */
  readonly workerScript?: string;
}

export interface RunningBrokerCluster {
  readonly url: string;
  readonly caCert: string;
  readonly jwksPath: string;
  readonly config: Readonly<BrokerConfig>;
  readonly workers: number;
  /** The CPU time of every serving worker and of this primary, summed. */
  cpuUsage(): Promise<NodeJS.CpuUsage>;
  close(): Promise<void>;
}

/** The default number of workers: one per core. */
export function defaultBrokerWorkers(): number {
  return availableParallelism();
}

/**
 * `ironlime broker --workers N`: N worker processes (`node:cluster`) serve one HTTPS port; the
 * primary only prepares and supervises. It creates the data folder's keys and TLS certificate and
 * applies the migrations once (so workers never race to create a CA or to lock the migration table),
 * then forks the workers, each a whole broker (`startBroker`) on the same database. Nothing a request
 * needs lives in one worker: sessions are stateless cookies under a key every worker derives from the
 * master key, the single use of a nonce, revocations, nodes and resources are rows, and the per-process
 * caches are keyed by content. So any worker serves any request, and the kernel's connection spreading
 * (cluster's round robin) is all the balancing there is. PGlite is one process's: more than one worker
 * needs `databaseUrl`. A worker that dies after start-up is replaced; one that dies during it fails the
 * start. Must be called in the primary; the workers run `runBrokerWorker` (the same script re-run by
 * `cluster.fork`, which the caller dispatches on `cluster.isWorker`).
 */
export async function startBrokerCluster(input: BrokerConfigInput, options: BrokerClusterOptions = {}): Promise<RunningBrokerCluster> {
  const config = buildBrokerConfig(input);
  const count = options.workers ?? defaultBrokerWorkers();
  const log = options.logger ?? pino({ level: 'silent' });
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidConfig('broker.workers', 'must be a positive integer');
  }
  if (count > 1 && config.databaseUrl === undefined) {
    throw new InvalidConfig('broker.workers', 'more than one worker needs a PostgreSQL databaseUrl (embedded PGlite serves one process)');
  }
  const keys = await loadOrCreateBrokerKeys(config.dataDir, config.issuer);
  const tls = await loadOrCreateServiceTls({ dataDir: config.dataDir, serviceName: 'broker', sans: config.tlsSans, warn: (message) => log.warn(message) });
  const database = await openBrokerDatabase(config, options.searchPath);
  try {
    await migrateLatest(database.knex);
  } finally {
    await database.close();
  }
  if (options.workerScript !== undefined) {
    cluster.setupPrimary({ exec: options.workerScript, args: [] });
  }
  const settings: WorkerSettings = { config, ...(options.searchPath === undefined ? {} : { searchPath: options.searchPath }) };
  const env = { [WORKER_SETTINGS_ENV]: JSON.stringify(settings) };
  let closing = false;
  const workers = new Set<Worker>();
  /** Workers past start-up (they answer `brokerCpu`). */
  const serving = new Set<Worker>();
  const fork = (): Promise<string> => {
    const worker = cluster.fork(env);
    workers.add(worker);
    return new Promise((resolve, reject) => {
      const onMessage = (message: WorkerMessage): void => {
        if ('brokerReady' in message) {
          worker.off('message', onMessage);
          worker.off('exit', onEarlyExit);
          serving.add(worker);
          worker.on('exit', (code) => {
            workers.delete(worker);
            serving.delete(worker);
            if (!closing) {
              log.error({ pid: worker.process.pid, code }, 'broker worker died; starting another');
              fork().catch((error: unknown) => log.error({ err: error }, 'broker worker could not be replaced'));
            }
          });
          resolve(message.brokerReady.url);
        }
      };
      const onEarlyExit = (code: number | null): void => {
        workers.delete(worker);
        reject(new Error(`broker worker exited during start-up (exit code ${String(code)})`));
      };
      worker.on('message', onMessage);
      worker.once('exit', onEarlyExit);
    });
  };
  const stopAll = async (): Promise<void> => {
    closing = true;
    await Promise.all(
      [...workers].map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.isDead()) {
              resolve();
              return;
            }
            worker.once('exit', () => resolve());
            worker.send('brokerStop');
          }),
      ),
    );
  };
  let url: string;
  try {
    // The first worker binds the port (a random one for port 0); the others share it.
    url = await fork();
    await Promise.all(Array.from({ length: count - 1 }, fork));
  } catch (error) {
    await stopAll();
    throw error;
  }
  options.announce?.(`broker listening on ${url} (${count} worker${count === 1 ? '' : 's'})`);
  log.info({ url, workers: count }, 'broker cluster ready');
  return {
    url,
    caCert: tls.ca,
    jwksPath: keys.jwksPath,
    config,
    workers: count,
    cpuUsage: async () => {
      const usages = await Promise.all([...serving].map(workerCpu));
      return usages.reduce((sum, usage) => ({ user: sum.user + usage.user, system: sum.system + usage.system }), process.cpuUsage());
    },
    close: stopAll,
  };
}

/** The broker's database as the primary (for the migrations) and every worker open it. */
function openBrokerDatabase(config: Readonly<BrokerConfig>, searchPath: string | undefined): ReturnType<typeof createDatabase> {
  return createDatabase({
    dataDir: config.dataDir,
    ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }),
    ...(searchPath === undefined ? {} : { searchPath }),
  });
}

function workerCpu(worker: Worker): Promise<NodeJS.CpuUsage> {
  return new Promise((resolve) => {
    const onMessage = (message: WorkerMessage): void => {
      if ('brokerCpu' in message) {
        worker.off('message', onMessage);
        resolve(message.brokerCpu);
      }
    };
    worker.on('message', onMessage);
    worker.send('brokerCpu');
  });
}

/**
 * The body of a worker forked by `startBrokerCluster`: a broker on the settings the primary passed
 * (migrations already applied), answering `brokerCpu` and stopping on `brokerStop` or when the primary
 * goes away. Resolves once serving.
 */
export async function runBrokerWorker(options: { readonly logger?: Logger } = {}): Promise<void> {
  const text = process.env[WORKER_SETTINGS_ENV];
  if (!cluster.isWorker || text === undefined) {
    throw new Error('runBrokerWorker runs only in a worker forked by startBrokerCluster');
  }
  const settings = JSON.parse(text) as WorkerSettings;
  const config = buildBrokerConfig(settings.config as unknown as Record<string, unknown>);
  const database = await openBrokerDatabase(config, settings.searchPath);
  let running: RunningBroker;
  try {
    running = await startBroker(config, { database, migrated: true, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  } catch (error) {
    // The channel to the primary keeps a worker alive: without letting go of it (and of the database),
    // a worker that failed to start (a taken port) never ended and the primary waited for it forever.
    await database.close().catch(() => undefined);
    process.disconnect?.();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= running
      .close()
      .then(() => database.close())
      .finally(() => process.exit(0)));
  process.on('message', (message: unknown) => {
    if (message === 'brokerCpu') {
      process.send?.({ brokerCpu: process.cpuUsage() });
    } else if (message === 'brokerStop') {
      void stop();
    }
  });
  process.on('disconnect', () => void stop());
  // The primary stops the workers; a signal for the whole process group must not race it.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.send?.({ brokerReady: { url: running.url } });
}
