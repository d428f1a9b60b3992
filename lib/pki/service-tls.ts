import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';
import type { CertificateType } from './certificate-authority.js';
import { initCa, issueCertificate, issuedCertificatePaths } from './ca-directory.js';
import { caExpiryWarning, forgeValidityOf } from './certificate-validity.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readIfExists, writeFileAtomic } from './pem-files.js';
import { readPrivateIfExists } from './private-file.js';
import { createSelfSignedServerCertificate } from './self-signed-server.js';
import { DEFAULT_SERVER_SANS, toAltNames } from './subject-alt-names.js';
import { parseCertificateAndKey } from './x509-builder.js';

/** A certificate is reissued when it expires within this margin. */
const RENEW_MARGIN_MS = 24 * 60 * 60 * 1000;

/** PEMs a TLS server or client is configured with. */
export interface ServiceTls {
  /** The CA certificate that issued `cert` (and that peers' client certificates must chain to). */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ServiceTlsOptions {
  /** The service's data folder; the CA lives in `<dataDir>/ca`. */
  readonly dataDir: string;
  /** File stem and CN of the certificate, e.g. `registrar`, `verifier`, `tenant`. */
  readonly serviceName: string;
  /** Extra DNS names / IPs (server certificates always carry localhost, 127.0.0.1, ::1). */
  readonly sans?: readonly string[];
  /** Told when the CA has less than 30 days left (default: a Node.js process warning). */
  readonly warn?: (message: string) => void;
}

/** The CA folder of a data dir. */
export function caDirOf(dataDir: string): string {
  return path.join(dataDir, 'ca');
}

/**
 * Zero-configuration TLS for a service: creates `<dataDir>/ca` if absent (see `initCa`; an expired CA
 * is refused) and a server certificate `<serviceName>-cert.crt` for the service, reusing the one on
 * disk while it still chains to that CA, does not outlive it, matches its key, carries serverAuth, is
 * valid for more than a day and names every requested SAN.
 */
export function loadOrCreateServiceTls(options: ServiceTlsOptions): Promise<ServiceTls> {
  return loadOrCreateIssued(options, 'server');
}

/** As `loadOrCreateServiceTls`, for a client certificate (tenant, or a verifier talking to agents). */
export function loadOrCreateClientTls(options: ServiceTlsOptions): Promise<ServiceTls> {
  return loadOrCreateIssued(options, 'client');
}

export interface SelfSignedTlsOptions {
  /** Folder holding `<name>-cert.crt` and `<name>-private.pem`. */
  readonly dir: string;
  readonly name: string;
  /** The certificate's CN (an agent uses its UUID). */
  readonly commonName: string;
  readonly sans?: readonly string[];
}

/**
 * The pull agent's self-signed server certificate, created once and reused across restarts (so the
 * `mtls_cert` the registrar holds stays valid) while it matches its key, has more than a day left and
 * names every requested SAN.
 */
export async function loadOrCreateSelfSignedServerTls(options: SelfSignedTlsOptions): Promise<{ cert: string; key: string }> {
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const paths = issuedCertificatePaths(options.dir, options.name);
  const existing = await readReusable(paths, undefined, [...(options.sans ?? []), 'localhost', '127.0.0.1'], 'server');
  if (existing !== undefined) {
    return existing;
  }
  const created = createSelfSignedServerCertificate({
    commonName: options.commonName,
    ...(options.sans === undefined ? {} : { sans: options.sans }),
  });
  await writeFileAtomic(paths.keyPath, created.keyPem, PRIVATE_KEY_MODE);
  await writeFileAtomic(paths.certPath, created.certPem, CERTIFICATE_MODE);
  return { cert: created.certPem, key: created.keyPem };
}

async function loadOrCreateIssued(options: ServiceTlsOptions, type: CertificateType): Promise<ServiceTls> {
  const caDir = caDirOf(options.dataDir);
  const ca = await initCa(caDir);
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const warning = caExpiryWarning(`CA ${ca.certPath}`, forgeValidityOf(caCert), Date.now());
  if (warning !== undefined) {
    (options.warn ?? ((message: string) => process.emitWarning(message)))(warning);
  }
  const paths = issuedCertificatePaths(caDir, options.serviceName);
  const sans = options.sans ?? [];
  const wanted = type === 'server' ? [...sans, ...DEFAULT_SERVER_SANS] : sans;
  const existing = await readReusable(paths, caCert, wanted, type);
  if (existing !== undefined) {
    return { ca: ca.certPem, ...existing };
  }
  const issued = await issueCertificate({ caDir, name: options.serviceName, type, sans });
  return { ca: ca.certPem, cert: issued.certPem, key: issued.keyPem };
}

/** The extended key usage (RFC 5280 §4.2.1.12) a certificate of each type must allow, as node-forge names it. */
const PURPOSE: Readonly<Record<CertificateType, 'serverAuth' | 'clientAuth'>> = { server: 'serverAuth', client: 'clientAuth' };
/** anyExtendedKeyUsage (RFC 5280 §4.2.1.12); node-forge has no name for it and keys it by its OID. */
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';

/**
 * Whether `cert` may serve as a certificate of `type`. Without an extendedKeyUsage extension it may
 * serve any purpose (RFC 5280 §4.2.1.12; Keylime's CA tool issues none), as TLS peers judge it; with
 * one, it must name the purpose or anyExtendedKeyUsage.
 */
function allowsPurpose(cert: forge.pki.Certificate, type: CertificateType): boolean {
  const usage = cert.getExtension('extKeyUsage') as Partial<Record<string, unknown>> | null;
  return usage === null || usage[PURPOSE[type]] === true || usage[ANY_EXTENDED_KEY_USAGE] === true;
}

/**
 * The pair on disk if it can be used as is; undefined when absent, broken, stale, outliving its
 * issuer, missing a SAN or made for the other type (a server certificate is no client certificate).
 */
async function readReusable(
  paths: { certPath: string; keyPath: string },
  issuer: forge.pki.Certificate | undefined,
  wantedSans: readonly string[],
  type: CertificateType,
): Promise<{ cert: string; key: string } | undefined> {
  const certPem = await readIfExists(paths.certPath);
  const keyPem = await readPrivateIfExists(paths.keyPath);
  if (certPem === undefined || keyPem === undefined) {
    return undefined;
  }
  let cert: forge.pki.Certificate;
  try {
    cert = parseCertificateAndKey({ certPem, keyPem }, paths.certPath).cert;
    if (issuer !== undefined && !issuer.verify(cert)) {
      return undefined;
    }
  } catch {
    // A broken or foreign pair is replaced, exactly like a missing one.
    return undefined;
  }
  if (cert.validity.notAfter.getTime() - Date.now() < RENEW_MARGIN_MS) {
    return undefined;
  }
  // Issued before leaves were cut to their CA's end: it would seem valid to the last day while every peer refuses its chain.
  if (issuer !== undefined && cert.validity.notAfter.getTime() > issuer.validity.notAfter.getTime()) {
    return undefined;
  }
  if (!allowsPurpose(cert, type)) {
    return undefined;
  }
  return hasAllSans(cert, wantedSans) ? { cert: certPem, key: keyPem } : undefined;
}

function hasAllSans(cert: forge.pki.Certificate, wanted: readonly string[]): boolean {
  const extension = cert.getExtension('subjectAltName') as { altNames?: { type: number; value?: string; ip?: string }[] } | null;
  const present = new Set(
    (extension?.altNames ?? []).map((n) => (n.type === 7 ? `ip:${canonicalIp(n.ip ?? '')}` : `dns:${(n.value ?? '').toLowerCase()}`)),
  );
  return toAltNames(wanted).every((n) =>
    n.type === 7 ? present.has(`ip:${canonicalIp(n.ip)}`) : present.has(`dns:${n.value.toLowerCase()}`),
  );
}

/** IPv6 addresses have many spellings; the WHATWG URL parser gives the compressed lowercase one. */
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}
