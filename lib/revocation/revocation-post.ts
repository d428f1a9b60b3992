import { request, type Dispatcher } from 'undici';
import { KeylimeHttpError } from '../http/client-errors.js';

/**
 * POSTs a revocation envelope's JSON to `url`; a non-2xx answer throws `DeliveryRefused`. `deadline`
 * ends the whole exchange, the answer's body included: undici's own timeouts only bound the wait for
 * the headers and between two chunks, so a receiver dripping its answer would hold the delivery forever.
 */
export async function postEnvelope(url: string, body: string, dispatcher: Dispatcher, deadline: AbortSignal): Promise<void> {
  const reply = await request(url, { method: 'POST', dispatcher, signal: deadline, headers: { 'content-type': 'application/json' }, body });
  // undici's default limit: a longer body is not read, the connection is dropped (the status is the answer).
  await reply.body.dump({ signal: deadline, limit: 128 * 1024 });
  if (reply.statusCode < 200 || reply.statusCode >= 300) {
    throw new DeliveryRefused(`${url} answered ${reply.statusCode}`, reply.statusCode);
  }
}

/** A receiver's non-2xx answer. */
export class DeliveryRefused extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

/** How one delivery ended; a refusal keeps the receiver's status. */
export type Delivery = { readonly outcome: 'delivered' | 'gave_up' } | { readonly outcome: 'refused'; readonly status: number };

/**
 * The status of a 4xx other than 408 and 429, which will not change on a retry (the receiver has no
 * revocation key, or refuses the signature): retrying it would only repeat the request per agent per
 * attempt. Undefined for anything worth retrying.
 */
export function finalRefusalStatus(error: unknown): number | undefined {
  const status = error instanceof DeliveryRefused ? error.statusCode : error instanceof KeylimeHttpError ? error.remoteHttpStatus : 0;
  return status >= 400 && status < 500 && status !== 408 && status !== 429 ? status : undefined;
}
