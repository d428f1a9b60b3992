import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { FastifyBaseLogger } from 'fastify';
import { verifiedClientCertificate } from '../http/client-certificate.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { RefusalLogLimit, type RefusalLogLimits } from './refusal-log-limit.js';

/** OpenSSL's error for a client that sent no certificate to a server that requires one. */
const NO_CLIENT_CERTIFICATE = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';

/**
 * Logs at `warn`, with the peer's address and the reason, every client the agent's mTLS refuses: a
 * refused client certificate is a security event (someone without a certificate from the trusted
 * client CA reached the agent's port, or a verifier whose certificate lapsed). Three ways:
 * - no certificate: the handshake fails (`tlsClientError`, OpenSSL's "peer did not return a certificate");
 * - a certificate that does not verify (another CA, expired, not for client authentication): Node
 *   closes the connection after the handshake and reports it as a hang-up, the reason in
 *   `authorizationError`;
 * - a certificate that lapsed on a kept-alive connection: the request's 403 (`refuseLapsedClientCertificate`).
 * Any other failed handshake (a client that does not trust the agent's certificate, a scanner) is
 * logged at `debug`. Before, the first two were not logged at all and the third only at `info`
 * ("request refused", without the address).
 * A peer hammering handshakes would flood the log: only the first refusals per peer address in a
 * window are logged one by one, the rest as one warn line with their count when the window ends or
 * the service closes (`RefusalLogLimit`, `limits`).
 */
export function logRefusedClients(service: KeylimeService, log: FastifyBaseLogger, limits: RefusalLogLimits = {}): void {
  const limit = new RefusalLogLimit(({ address, count }) => log.warn({ address, count }, 'client certificate refusals not logged one by one'), limits);
  service.app.addHook('onClose', async () => limit.close());
  const refused = (peer: Peer | undefined, reason: string, msg: string): void => {
    if (limit.admit(peer?.address ?? 'unknown')) log.warn({ peer: peerText(peer), reason }, msg);
  };
  // Node destroys a socket whose certificate did not verify before it reports it, and its address
  // goes with it: the address is the TCP connection's, read when it connected.
  const peers = new WeakMap<Socket, Peer>();
  service.app.server.on('connection', (socket: Socket) => peers.set(socket, peerOf(socket)));
  service.app.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
    const peer = socket.remoteAddress === undefined ? peers.get(tcpSocketOf(socket)) : peerOf(socket);
    const verifyError: unknown = socket.authorizationError;
    if (typeof verifyError === 'string' && verifyError !== '') {
      refused(peer, verifyError, 'client certificate refused at the TLS handshake');
    } else if (error.code === NO_CLIENT_CERTIFICATE) {
      refused(peer, 'no client certificate', 'client certificate refused at the TLS handshake');
    } else {
      log.debug({ peer: peerText(peer), reason: error.code ?? error.message }, 'TLS handshake failed');
    }
  });
  service.app.addHook('onError', async (request, _reply, error) => {
    const socket = request.raw.socket;
    if (socket instanceof TLSSocket && verifiedClientCertificate(request) === undefined) {
      refused(peerOf(socket), error.message, 'client certificate refused');
    }
  });
}

/** A client's address and port. */
interface Peer {
  readonly address: string;
  readonly port: number;
}

/** `address:port`, as the log lines give it. */
function peerText(peer: Peer | undefined): string | undefined {
  return peer === undefined ? undefined : `${peer.address}:${peer.port}`;
}

function peerOf(socket: Socket): Peer {
  return { address: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 };
}

/** The TCP connection a server-side TLS socket wraps (Node keeps it as `_parent`; not typed). */
function tcpSocketOf(socket: TLSSocket): Socket {
  return (socket as unknown as { _parent: Socket })._parent;
}
