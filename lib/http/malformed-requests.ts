import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { sendEnvelope } from './envelope.js';
import { errorReply } from './error-envelope.js';
import { RequestValidationError } from './http-errors.js';

/**
 * Fastify's `frameworkErrors`: a path that is not valid percent-encoded UTF-8, or a parameter over
 * `maxParamLength`, is refused before routing and fastify would answer in its own shape; this answers
 * in Keylime's envelope instead, like every other refusal.
 */
export function frameworkErrorReply(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const typed =
    error.code === 'FST_ERR_BAD_URL'
      ? new RequestValidationError('path', 'is not valid percent-encoded UTF-8')
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? new RequestValidationError('path', 'a segment is longer than 256 characters')
        : error;
  const { code, status } = errorReply(typed);
  request.log.info({ code, status }, 'request refused');
  return sendEnvelope(reply, code, status, {});
}

/**
 * The server's `clientError` handler: bytes node's HTTP parser refuses (a control character or NUL in
 * the request line, headers over the size limit, a request that timed out) never reach fastify, so the
 * reply is written on the socket here — in Keylime's envelope, where fastify's default writes its own.
 */
export function clientErrorReply(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const status = code === 400 ? new RequestValidationError('request', 'is malformed').message : (STATUS_CODES[code] ?? 'Bad Request');
  const body = JSON.stringify({ code, status, results: {} });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}
