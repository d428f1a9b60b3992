import { RequestValidationError } from './http-errors.js';
import { parseRequestBody } from './json-guard.js';
import type { RequestBodyAnswer, RequestBodyJob } from './off-thread-bodies.js';
import { requestBodyText } from './request-body-text.js';

/**
 * What a thread of an `OffThreadPool` answers for a request body: decoded and parsed exactly as the service's
 * parser does on the event loop (`parseRequestBody`: value count, JSON.parse, depth and prototype
 * keys), the value, or the refusal's parts so the service throws the same error, or an unexpected
 * error's message.
 */
export function answerRequestBody(job: RequestBodyJob): RequestBodyAnswer {
  try {
    const text = requestBodyText(Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength));
    return { id: job.id, value: parseRequestBody(text, job.maxValues) };
  } catch (error) {
    if (error instanceof RequestValidationError) {
      const cause = error.cause instanceof Error ? error.cause.message : undefined;
      return { id: job.id, refusal: { location: error.location, detail: error.detail, ...(cause === undefined ? {} : { cause }) } };
    }
    return { id: job.id, failure: error instanceof Error ? error.message : String(error) };
  }
}
