import type { PeerCertificate } from 'node:tls';
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { validityProblem, type CertificateValidity } from '../pki/certificate-validity.js';
import { clientCertificateRefusal } from './client-certificate-refusal.js';

/** A certificate a connection presented at its handshake, with its validity read once. */
interface HandshakeCertificate {
  readonly certificate: PeerCertificate;
  readonly validity: CertificateValidity;
}

/**
 * The certificate each connection presented at its handshake. `getPeerCertificate()` builds a fresh
 * object from the X.509 every call (5 % of a simulated agent's CPU, twice per admin request); the
 * answer is fixed by the handshake that set `authorized`, so it is read once per connection. Weak, so
 * it goes with the socket.
 */
const handshakeCertificates = new WeakMap<TLSSocket, HandshakeCertificate | undefined>();

/**
 * The client certificate of a request when TLS verified it against the service's CA (the socket is
 * `authorized` and the peer sent a certificate) and it is still within its validity now, else
 * undefined. OpenSSL checks the chain, the validity period and, for client certificates, the
 * clientAuth purpose during the handshake, so it is as strong as the server's `ca` setting; the
 * validity is checked again at each request because a kept-alive connection outlives its handshake: a
 * certificate that expired since (expiry is how a client certificate is withdrawn: there is no CRL)
 * no longer admits anything, even on the connection it opened.
 */
export function verifiedClientCertificate(request: FastifyRequest): PeerCertificate | undefined {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) {
    return undefined;
  }
  let verified: HandshakeCertificate | undefined;
  if (handshakeCertificates.has(socket)) {
    verified = handshakeCertificates.get(socket);
  } else {
    const certificate = socket.getPeerCertificate();
    verified =
      certificate.raw === undefined || certificate.raw.length === 0
        ? undefined
        : { certificate, validity: { notBeforeMs: Date.parse(certificate.valid_from), notAfterMs: Date.parse(certificate.valid_to) } };
    handshakeCertificates.set(socket, verified);
  }
  return verified !== undefined && validityProblem(verified.validity, Date.now()) === undefined ? verified.certificate : undefined;
}

/**
 * For a service that requires a client certificate in every handshake (the agent): refuses a request
 * on a TLS connection whose certificate is no longer valid now (`verifiedClientCertificate`), which a
 * new handshake with it would not have let in. Answered 403 rather than by closing the connection: a
 * pull verifier whose own certificate expired then fails its agents at once (`no_quote`, the reason
 * naming the expired certificate) instead of after its retries as unreachable; failed either way. A
 * request that did not come over TLS (`inject` in tests) is let through.
 * @throws ForbiddenError (403) "client certificate expired"
 */
export function refuseLapsedClientCertificate(request: FastifyRequest): void {
  if (request.raw.socket instanceof TLSSocket && verifiedClientCertificate(request) === undefined) {
    throw clientCertificateRefusal(request);
  }
}
