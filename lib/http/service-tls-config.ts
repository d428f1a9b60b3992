import type { ServerOptions } from 'node:https';
import { InvalidConfig } from '../../interfaces/errors.js';

/**
 * TLS settings of a service (spec §0.3):
 * - registrar TLS port and verifier: `requestClientCert: true, requireClientCert: 'routes'` — the
 *   handshake succeeds without a client certificate, routes marked `admin` then demand one;
 * - pull agent: `requestClientCert: true, requireClientCert: 'all'` — mTLS on every route, a peer
 *   without a certificate from `ca` fails the handshake;
 * - `requestClientCert: false`: no client certificates at all, so admin routes always answer 403.
 */
export interface ServiceTlsConfig {
  /** Server certificate PEM (a chain may follow it). */
  readonly cert: string;
  /** Server private key PEM. */
  readonly key: string;
  /** PEM of the CA(s) client certificates must chain to. */
  readonly ca: string;
  /**
   * Where `ca` comes from, as an operator would change it (e.g. "the ca/cacert.crt of its --data-dir"),
   * named in the 403 to a client certificate it did not issue; default "its tls.ca".
   */
  readonly clientCaOrigin?: string;
  readonly requestClientCert: boolean;
  readonly requireClientCert: 'all' | 'routes';
}

/** node:https server options for `tls`; TLS 1.2 at least. Throws `InvalidConfig` on an unusable setting. */
export function httpsServerOptions(tls: ServiceTlsConfig): ServerOptions {
  for (const field of ['cert', 'key', 'ca'] as const) {
    if (typeof tls[field] !== 'string' || !tls[field].includes('-----BEGIN ')) {
      throw new InvalidConfig(`tls.${field}`, 'must be PEM text');
    }
  }
  if (tls.requireClientCert !== 'all' && tls.requireClientCert !== 'routes') {
    throw new InvalidConfig('tls.requireClientCert', "must be 'all' or 'routes'");
  }
  if (tls.requireClientCert === 'all' && !tls.requestClientCert) {
    throw new InvalidConfig('tls.requireClientCert', "'all' needs requestClientCert: true");
  }
  return {
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    requestCert: tls.requestClientCert,
    rejectUnauthorized: tls.requestClientCert && tls.requireClientCert === 'all',
    minVersion: 'TLSv1.2',
  };
}
