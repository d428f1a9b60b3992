import { X509Certificate } from 'node:crypto';
import { Agent as HttpsAgent } from 'node:https';
import { createSecureContext, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { InvalidConfig } from '../../interfaces/errors.js';

export interface KeylimeClientTls {
  /** PEM CA(s) the server certificate must chain to (plus the host name check). */
  readonly ca?: string;
  /** Client certificate and key PEM for mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /**
   * PEM of the one server certificate to accept, byte for byte, whatever its names: how the verifier
   * and the tenant trust a pull agent's self-signed `mtls_cert` from the registrar. Excludes `ca`.
   */
  readonly pinnedServerCert?: string;
}

/**
 * The keep-alive HTTPS agent for `tls` (CA, or one pinned server certificate compared byte for byte,
 * plus an optional client certificate), for the axios-based client. With `idleMs`, an idle kept-alive
 * connection is closed after `idleMs`, or one second before the server's announced keep-alive timeout
 * (`Keep-Alive: timeout=N`) when that is sooner (node's agent does this once it has a timeout), so the
 * client, not the server, ends idle connections; without it they wait until the server closes them.
 */
export function createHttpsAgent(tls: KeylimeClientTls, idleMs?: number): HttpsAgent {
  return keepAliveAgent(keylimeTlsConnectOptions(tls), tls.pinnedServerCert !== undefined, idleMs);
}

/**
 * `createHttpsAgent`'s agent and, on the same connect options (one secure context, so the same TLS
 * settings to the letter), one that opens a new connection for each request and closes it after the
 * reply: for a request sent once more after a kept-alive connection was closed under it.
 */
export function createHttpsAgentPair(tls: KeylimeClientTls, idleMs: number): { readonly pooled: HttpsAgent; readonly fresh: HttpsAgent } {
  const connect = keylimeTlsConnectOptions(tls);
  const pinned = tls.pinnedServerCert !== undefined;
  return {
    pooled: keepAliveAgent(connect, pinned, idleMs),
    fresh: new HttpsAgent({ keepAlive: false, ...(pinned ? { maxCachedSessions: 0 } : {}), ...connect }),
  };
}

function keepAliveAgent(connect: ConnectionOptions, pinned: boolean, idleMs: number | undefined): HttpsAgent {
  const idle = idleMs === undefined ? {} : { timeout: idleMs };
  if (!pinned) {
    return new HttpsAgent({ keepAlive: true, ...idle, ...connect });
  }
  // One server, one connection: a second request waits for the kept-alive socket instead of paying a
  // new TLS handshake on both sides. No session resumption: every handshake shows the certificate again.
  return new HttpsAgent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0, ...idle, ...connect });
}

/**
 * The `tls.connect` options for `tls`: one secure context (key, certificate and CA parsed once, not on
 * every reconnect), TLS 1.2 at least, and for a pinned server certificate the exact comparison that
 * replaces the host name check. Shared by `createHttpsAgent` and the thin hot-path client.
 */
export function keylimeTlsConnectOptions(tls: KeylimeClientTls): ConnectionOptions {
  if (tls.pinnedServerCert !== undefined && tls.ca !== undefined) {
    throw new InvalidConfig('tls', 'give either ca or pinnedServerCert, not both');
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InvalidConfig('tls', 'cert and key go together');
  }
  const secureContext = createSecureContext({
    minVersion: 'TLSv1.2',
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...((tls.pinnedServerCert ?? tls.ca) === undefined ? {} : { ca: tls.pinnedServerCert ?? tls.ca }),
  });
  if (tls.pinnedServerCert === undefined) {
    return { minVersion: 'TLSv1.2', secureContext, ...(tls.ca === undefined ? {} : { ca: tls.ca }) };
  }
  const pinned = pinnedDer(tls.pinnedServerCert);
  return {
    minVersion: 'TLSv1.2',
    secureContext,
    // The pinned certificate is the only trust anchor, so OpenSSL accepts nothing else; the check below
    // then replaces the host name check (agents are reached by IP and name themselves by UUID) with an
    // exact comparison.
    ca: tls.pinnedServerCert,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const raw = cert.raw;
      if (raw === undefined || raw.length !== pinned.length || !raw.equals(pinned)) {
        return Object.assign(new Error('server certificate is not the pinned certificate'), { code: 'ERR_PINNED_CERT_MISMATCH' });
      }
      return undefined;
    },
  };
}

function pinnedDer(pem: string): Buffer {
  try {
    return new X509Certificate(pem).raw;
  } catch (error) {
    throw new InvalidConfig('tls.pinnedServerCert', 'is not a PEM certificate', { cause: error });
  }
}
