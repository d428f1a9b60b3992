import type { Server as TlsServer } from 'node:tls';
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from './http-errors.js';

/** Said of the service's CA when the service did not say where it comes from (`ServiceTlsConfig.clientCaOrigin`). */
export const DEFAULT_CLIENT_CA_ORIGIN = 'its tls.ca';

/** OpenSSL verify results meaning the certificate does not chain to a CA the server trusts. */
const FOREIGN_ISSUER = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** Where the CA of the server each unverified connection reached comes from; only unverified ones are kept. */
const originOfUnverified = new WeakMap<TLSSocket, string>();

/**
 * Remembers, for each connection to `server` whose client certificate did not verify, where the
 * server's CA comes from (`origin`, e.g. "the ca/cacert.crt of its --data-dir"), for the 403 it is
 * then answered (`clientCertificateRefusal`).
 */
export function rememberClientCaOrigin(server: TlsServer, origin: string): void {
  server.on('secureConnection', (socket: TLSSocket) => {
    if (!socket.authorized) originOfUnverified.set(socket, origin);
  });
}

/**
 * The 403 for a request that needed a verified client certificate and has none, saying why: none was
 * sent ("client certificate required", as before), it was not issued by the CA this service trusts
 * (naming where that CA comes from, never what it is), it expired (at the handshake or since, on a
 * kept-alive connection) or is not yet valid, or it is not one for client authentication. Only what
 * the client's own certificate and the handshake already tell the client is said.
 */
export function clientCertificateRefusal(request: FastifyRequest): ForbiddenError {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket)) return new ForbiddenError('client certificate required');
  if (socket.authorized) return new ForbiddenError('client certificate expired');
  const sent = socket.getPeerCertificate();
  if (sent.raw === undefined || sent.raw.length === 0) return new ForbiddenError('client certificate required');
  const origin = originOfUnverified.get(socket) ?? DEFAULT_CLIENT_CA_ORIGIN;
  const code = verifyErrorCode(socket);
  if (FOREIGN_ISSUER.has(code)) return new ForbiddenError(`client certificate not issued by the CA this service trusts (${origin})`);
  if (code === 'CERT_HAS_EXPIRED') return new ForbiddenError('client certificate expired');
  if (code === 'CERT_NOT_YET_VALID') return new ForbiddenError('client certificate not yet valid');
  if (code === 'INVALID_PURPOSE') {
    // OpenSSL reports its last error: a CA certificate or a server certificate of any CA ends here.
    return new ForbiddenError(`client certificate not for client authentication: one with the clientAuth usage from the CA this service trusts is needed (${origin})`);
  }
  return new ForbiddenError(`client certificate not accepted: ${code || 'not verified'}`);
}

/** OpenSSL's verify result of the handshake: Node gives it as a string code, typed as an `Error`. */
function verifyErrorCode(socket: TLSSocket): string {
  const error: unknown = socket.authorizationError;
  if (typeof error === 'string') return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : '';
}
