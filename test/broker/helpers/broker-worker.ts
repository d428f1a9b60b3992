import 'reflect-metadata';
import { runBrokerWorker } from '../../../lib/broker/broker-cluster.js';

/** The worker script of the cluster tests (`startBrokerCluster({ workerScript })`). */
await runBrokerWorker();
