import { parentPort } from 'node:worker_threads';
import { readJsonBody } from './repeated-member-json.js';
import type { JsonReplyAnswer, JsonReplyJob } from './off-thread-json.js';

/**
 * The thread of an `OffThreadJson`: reads each reply body it is posted with `readJsonBody` (the bound
 * on values, then `JSON.parse`) and posts back the value, or the message of why it is not JSON.
 */
const port = parentPort;
if (port === null) {
  throw new Error('json-reply-worker.js runs as the worker thread of OffThreadJson');
}
port.on('message', (job: JsonReplyJob) => {
  let answer: JsonReplyAnswer;
  try {
    answer = { id: job.id, value: readJsonBody(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength)) };
  } catch (error) {
    answer = { id: job.id, refusal: error instanceof Error ? error.message : String(error) };
  }
  port.postMessage(answer);
});
