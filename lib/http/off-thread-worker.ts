import { parentPort } from 'node:worker_threads';
import { answerOffThreadJob, type OffThreadJob } from './off-thread-answer.js';

/** A thread of an `OffThreadPool`: answers each job it is posted, a request body or a reply (`answerOffThreadJob`). */
const port = parentPort;
if (port === null) {
  throw new Error('off-thread-worker.js runs as a worker thread of OffThreadPool');
}
port.on('message', (job: OffThreadJob) => {
  port.postMessage(answerOffThreadJob(job));
});
