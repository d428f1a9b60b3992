import type { RequestBodyAnswer, RequestBodyJob } from './off-thread-bodies.js';
import type { JsonReplyAnswer, JsonReplyJob } from './off-thread-json.js';
import { readJsonBody } from './repeated-member-json.js';
import { answerRequestBody } from './request-body-answer.js';

/** A job a thread of an `OffThreadPool` is posted: a service's request body, or an agent's reply. */
export type OffThreadJob = RequestBodyJob | JsonReplyJob;

/** What a thread answers for a job: a request body as the service parses it (`answerRequestBody`), a reply as `readJsonBody` reads it. */
export function answerOffThreadJob(job: OffThreadJob): RequestBodyAnswer | JsonReplyAnswer {
  return job.kind === 'reply' ? answerJsonReply(job) : answerRequestBody(job);
}

/** The reply's value as `readJsonBody` gives it, or the message of why it is not JSON. */
function answerJsonReply(job: JsonReplyJob): JsonReplyAnswer {
  try {
    return { id: job.id, value: readJsonBody(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength)) };
  } catch (error) {
    return { id: job.id, refusal: error instanceof Error ? error.message : String(error) };
  }
}
