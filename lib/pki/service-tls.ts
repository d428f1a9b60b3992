import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';
import type { CertificateType } from './certificate-authority.js';
import { initCa, issueCertificate, issuedCertificatePaths, loadCa } from './ca-directory.js';
import { caExpiryWarning, forgeValidityOf } from './certificate-validity.js';
import { withIssueLock } from './issue-lock.js';
import { CERTIFICATE_MODE, PRIVATE_KEY_MODE, readIfExists, writeFileAtomic } from './pem-files.js';
import { readPrivateIfExists } from './private-file.js';
import { createSelfSignedServerCertificate } from './self-signed-server.js';
import { DEFAULT_SERVER_SANS, toAltNames } from './subject-alt-names.js';
import { parseCertificateAndKey } from './x509-builder.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * A certificate from the CA is reissued when less than this is left: at start, and while the service
 * runs (`CertificateRenewal`), so a service renews it a month before a peer would refuse it. One that
 * already ends when its CA does is kept: a new one could not end later.
 */
export const RENEW_MARGIN_MS = 30 * DAY_MS;
/** The agent's self-signed certificate is replaced when less than this is left (the registrar holds it). */
const SELF_SIGNED_RENEW_MARGIN_MS = DAY_MS;

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
  /** Tests of renewal: reissue when less than this is left (default `RENEW_MARGIN_MS`). */
  readonly renewMarginMs?: number;
  /** Tests of renewal: the lifetime of a certificate issued, in milliseconds (default 365 days). */
  readonly validityMs?: number;
  /** Ends a wait for another process issuing the same certificate (a renewing service closing). */
  readonly signal?: AbortSignal;
}

/** Where a service's CA comes from, as its 403 to a client certificate of another CA names it. */
export const DATA_DIR_CA_ORIGIN = 'the ca/cacert.crt of its --data-dir';

/** The CA folder of a data dir. */
export function caDirOf(dataDir: string): string {
  return path.join(dataDir, 'ca');
}

/**
 * Zero-configuration TLS for a service: creates `<dataDir>/ca` if absent (see `initCa`; an expired CA
 * is refused) and a server certificate `<serviceName>-cert.crt` for the service, reusing the one on
 * disk while it still chains to that CA, does not outlive it, matches its key, carries serverAuth,
 * names every requested SAN and has more than `RENEW_MARGIN_MS` left (or ends with its CA). Processes
 * sharing the CA folder issue one at a time (`withIssueLock`).
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
  const existing = await readReusable(paths, undefined, [...(options.sans ?? []), 'localhost', '127.0.0.1'], 'server', SELF_SIGNED_RENEW_MARGIN_MS);
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
  const ca = await initCa(caDirOf(options.dataDir));
  const warning = caExpiryWarning(`CA ${ca.certPath}`, forgeValidityOf(forge.pki.certificateFromPem(ca.certPem)), Date.now());
  if (warning !== undefined) {
    (options.warn ?? ((message: string) => process.emitWarning(message)))(warning);
  }
  return reusedOrIssued(ca.certPem, options, type);
}

/**
 * For a running service whose certificate is due (`renewalDue`): the pair on disk if another process
 * sharing the folder renewed it already, else a new one, written as at start. The CA must exist and be
 * valid: none is created here. @throws PkiError
 */
export async function renewIssuedTls(options: ServiceTlsOptions, type: CertificateType): Promise<ServiceTls> {
  const ca = await loadCa(caDirOf(options.dataDir));
  return reusedOrIssued(ca.certPem, options, type);
}

/**
 * Whether the certificate of `tls` should be reissued at `nowMs`: less than `marginMs` is left and a
 * new one would end later (one that ends with its CA is kept, or it would be renewed in a loop).
 */
export function renewalDue(tls: ServiceTls, nowMs: number, marginMs = RENEW_MARGIN_MS): boolean {
  const notAfterMs = forge.pki.certificateFromPem(tls.cert).validity.notAfter.getTime();
  const caNotAfterMs = forge.pki.certificateFromPem(tls.ca).validity.notAfter.getTime();
  return notAfterMs - nowMs < marginMs && notAfterMs < caNotAfterMs;
}

async function reusedOrIssued(caPem: string, options: ServiceTlsOptions, type: CertificateType): Promise<ServiceTls> {
  const caDir = caDirOf(options.dataDir);
  const caCert = forge.pki.certificateFromPem(caPem);
  const paths = issuedCertificatePaths(caDir, options.serviceName);
  const sans = options.sans ?? [];
  const wanted = type === 'server' ? [...sans, ...DEFAULT_SERVER_SANS] : sans;
  const reusable = (): Promise<{ cert: string; key: string } | undefined> =>
    readReusable(paths, caCert, wanted, type, options.renewMarginMs ?? RENEW_MARGIN_MS);
  const existing = await reusable();
  if (existing !== undefined) {
    return { ca: caPem, ...existing };
  }
  return withIssueLock(caDir, options.serviceName, async () => {
    // The process that held the lock before may have issued just what is wanted.
    const issuedMeanwhile = await reusable();
    if (issuedMeanwhile !== undefined) {
      return { ca: caPem, ...issuedMeanwhile };
    }
    const issued = await issueCertificate({ caDir, name: options.serviceName, type, sans, ...(options.validityMs === undefined ? {} : { validityMs: options.validityMs }) });
    return { ca: caPem, cert: issued.certPem, key: issued.keyPem };
  }, options.signal);
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
 * The pair on disk if it can be used as is; undefined when absent, broken, due for renewal, outliving its
 * issuer, missing a SAN or made for the other type (a server certificate is no client certificate).
 */
async function readReusable(
  paths: { certPath: string; keyPath: string },
  issuer: forge.pki.Certificate | undefined,
  wantedSans: readonly string[],
  type: CertificateType,
  renewMarginMs: number,
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
  const notAfterMs = cert.validity.notAfter.getTime();
  // One ending with its CA is kept: a new one would end no later.
  if (notAfterMs - Date.now() < renewMarginMs && (issuer === undefined || notAfterMs < issuer.validity.notAfter.getTime())) {
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
