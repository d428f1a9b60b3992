import { parentPort } from 'node:worker_threads';
import { checkEvidence } from './evidence-check.js';
import { EvidenceInputsCache } from './evidence-inputs-cache.js';
import type { EvidenceJob, EvidenceJobAnswer } from './evidence-worker-pool.js';

/**
 * A thread of the `POST /verify/evidence` pool: runs the engine on the jobs its pool posts, with a
 * cache and measured-boot memo of its own (objects owned here and handed to the engine), and posts
 * each answer back under the job's id.
 */
const port = parentPort;
if (port === null) {
  throw new Error('evidence-worker.js runs as a worker thread of EvidenceWorkerPool');
}
const cache = new EvidenceInputsCache();
port.on('message', (job: EvidenceJob) => {
  const answer: EvidenceJobAnswer = { id: job.id, answer: checkEvidence(job.data, cache, job.options) };
  port.postMessage(answer);
});
