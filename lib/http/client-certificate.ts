import type { PeerCertificate } from 'node:tls';
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/**
 * The client certificate of a request when TLS verified it against the service's CA (the socket is
 * `authorized` and the peer sent a certificate), else undefined. OpenSSL checks the chain, the
 * validity period and, for client certificates, the clientAuth purpose during the handshake; this
 * function only reads the result, so it is as strong as the server's `ca` setting.
 */
export function verifiedClientCertificate(request: FastifyRequest): PeerCertificate | undefined {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) {
    return undefined;
  }
  const cert = socket.getPeerCertificate();
  return cert.raw === undefined || cert.raw.length === 0 ? undefined : cert;
}
