import 'reflect-metadata';
import { parentPort } from 'node:worker_threads';
import { checkEvidence, evidenceText } from './evidence-check.js';
import { EvidenceInputsCache } from './evidence-inputs-cache.js';
import { EVIDENCE_WORKER_READY, type EvidenceJob, type EvidenceJobAnswer } from './evidence-worker-pool.js';

/**
 * A thread of the `POST /verify/evidence` pool: parses, validates and checks the request bodies of
 * each batch its pool posts, with a cache and measured-boot memo of its own (objects owned here and
 * handed to the engine), and posts the batch's answers back in one message, each under its job's id;
 * it says it is ready once its modules are loaded.
 */
const port = parentPort;
if (port === null) {
  throw new Error('evidence-worker.js runs as a worker thread of EvidenceWorkerPool');
}
const cache = new EvidenceInputsCache();
port.on('message', (batch: readonly EvidenceJob[]) => {
  const answers: EvidenceJobAnswer[] = batch.map((job) => ({ id: job.id, answer: checkEvidence(evidenceText(job.body), cache, job.options) }));
  port.postMessage(answers);
});
port.postMessage(EVIDENCE_WORKER_READY);
