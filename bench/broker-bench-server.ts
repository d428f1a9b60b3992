import 'reflect-metadata';
import { startBroker } from '../lib/broker/broker-server.js';
import { createDatabase } from '../lib/db/database-factory.js';
import { loadOrCreateClientTls } from '../lib/pki/service-tls.js';

/**
 * The broker of `npm run bench -- broker`, in a child process of its own so that its CPU time is
 * measured apart from the clients' (quotes, key generation, decryption). Answers `cpu` messages with
 * its `process.cpuUsage()` and `stop` by closing and exiting.
 */
const [dataDir, databaseUrl, schema] = process.argv.slice(2) as [string, string, string];
const database = await createDatabase({ url: databaseUrl, dataDir, searchPath: schema });
const broker = await startBroker({ dataDir, port: 0, issuer: 'bench-issuer' }, { database });
const admin = await loadOrCreateClientTls({ dataDir, serviceName: 'bench-admin' });
process.on('message', (message: unknown) => {
  if (message === 'cpu') {
    process.send?.({ cpu: process.cpuUsage() });
  } else if (message === 'stop') {
    void broker.close().then(() => database.close()).then(() => process.exit(0));
  }
});
process.send?.({ ready: { url: broker.url, caCert: broker.caCert, cert: admin.cert, key: admin.key } });
