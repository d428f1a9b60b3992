import type { FastifyReply } from 'fastify';

/**
 * A signal that aborts when the request's connection closes before its reply was sent: the client
 * gave up (a verifier past its timeout), so work still waiting for it can be skipped.
 */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) controller.abort();
  });
  return controller.signal;
}
