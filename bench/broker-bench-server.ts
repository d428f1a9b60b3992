import 'reflect-metadata';
import cluster from 'node:cluster';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { runBrokerWorker, startBrokerCluster } from '../lib/broker/broker-cluster.js';
import { startBroker } from '../lib/broker/broker-server.js';
import { createDatabase } from '../lib/db/database-factory.js';
import { loadOrCreateClientTls } from '../lib/pki/service-tls.js';

/**
 * The broker of `npm run bench -- broker`, in a child process of its own so that its CPU time is
 * measured apart from the clients' (quotes, key generation, decryption). With one worker the broker
 * runs in this process; with more, this process is the `startBrokerCluster` primary and its workers
 * re-run this file. Answers `cpu` messages with the CPU time of every broker process summed and
 * `stop` by closing and exiting. One worker and a profile folder (fifth argument): `{ profile: label }`
 * starts the V8 CPU profiler and `profile-stop` writes `<label>.cpuprofile`, so a phase's profile
 * holds that phase only (no start-up, key generation or module loading).
 */
const [dataDir, databaseUrl, schema, workerText, profileDir] = process.argv.slice(2) as [string, string, string, string, string | undefined];
const workers = Number(workerText);
if (cluster.isWorker) {
  await runBrokerWorker();
} else {
  const settings = { dataDir, port: 0, issuer: 'bench-issuer', databaseUrl };
  let broker: { readonly url: string; readonly caCert: string; close(): Promise<void> };
  let cpu: () => Promise<NodeJS.CpuUsage>;
  let close: () => Promise<void>;
  if (workers === 1) {
    const database = await createDatabase({ url: databaseUrl, dataDir, searchPath: schema });
    broker = await startBroker(settings, { database });
    cpu = () => Promise.resolve(process.cpuUsage());
    close = () => broker.close().then(() => database.close());
  } else {
    const running = await startBrokerCluster(settings, { workers, searchPath: schema });
    broker = running;
    cpu = () => running.cpuUsage();
    close = () => running.close();
  }
  const admin = await loadOrCreateClientTls({ dataDir, serviceName: 'bench-admin' });
  const inspector = profileDir === undefined || workers !== 1 ? undefined : new Session();
  let profiling = 'phase';
  inspector?.connect();
  await inspector?.post('Profiler.enable');
  process.on('message', (message: unknown) => {
    if (message === 'cpu') {
      void cpu().then((usage) => process.send?.({ cpu: usage }));
    } else if (message === 'stop') {
      void close().then(() => process.exit(0));
    } else if (message !== null && typeof message === 'object' && 'profile' in message) {
      profiling = String(message.profile);
      void (inspector?.post('Profiler.start') ?? Promise.resolve()).then(() => process.send?.({ profiling }));
    } else if (message === 'profile-stop') {
      const file = inspector === undefined ? 'none (profiles are taken with one worker only)' : path.join(profileDir ?? '.', `${profiling}.cpuprofile`);
      void (inspector?.post('Profiler.stop').then(({ profile }) => writeFile(file, JSON.stringify(profile))) ?? Promise.resolve()).then(() =>
        process.send?.({ profiled: file }),
      );
    }
  });
  process.send?.({ ready: { url: broker.url, caCert: broker.caCert, cert: admin.cert, key: admin.key } });
}
