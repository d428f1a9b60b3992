import { parentPort } from 'node:worker_threads';
import type { RequestBodyJob } from './off-thread-bodies.js';
import { answerRequestBody } from './request-body-answer.js';

/** A thread of `OffThreadBodies`: answers each request body it is posted (`answerRequestBody`). */
const port = parentPort;
if (port === null) {
  throw new Error('request-body-worker.js runs as a worker thread of OffThreadBodies');
}
port.on('message', (job: RequestBodyJob) => {
  port.postMessage(answerRequestBody(job));
});
