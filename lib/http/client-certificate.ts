import type { PeerCertificate } from 'node:tls';
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/**
 * The certificate each connection presented at its handshake. `getPeerCertificate()` builds a fresh
 * object from the X.509 every call (5 % of a simulated agent's CPU, twice per admin request); the
 * answer is fixed by the handshake that set `authorized`, so it is read once per connection. Weak, so
 * it goes with the socket.
 */
const handshakeCertificates = new WeakMap<TLSSocket, PeerCertificate | undefined>();

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
  if (handshakeCertificates.has(socket)) {
    return handshakeCertificates.get(socket);
  }
  const cert = socket.getPeerCertificate();
  const verified = cert.raw === undefined || cert.raw.length === 0 ? undefined : cert;
  handshakeCertificates.set(socket, verified);
  return verified;
}
