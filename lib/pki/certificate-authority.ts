import forge from 'node-forge';
import { caValidityProblem, forgeValidityOf } from './certificate-validity.js';
import { PkiError } from './pki-error.js';
import { DEFAULT_SERVER_SANS, toAltNames } from './subject-alt-names.js';
import {
  buildCertificate,
  generateRsaKeyPair,
  parseCertificateAndKey,
  subjectAltNameExtension,
  toPems,
  type CertificateAndKey,
} from './x509-builder.js';

/** `server` certificates carry the serverAuth EKU, `client` certificates clientAuth (RFC 5280 §4.2.1.12). */
export type CertificateType = 'server' | 'client';

export interface CreateCaOptions {
  /** Default "ironlime CA". */
  readonly commonName?: string;
  /** Default 3650 days, as Keylime's CA. */
  readonly validityDays?: number;
}

export interface IssueOptions {
  readonly commonName: string;
  readonly type: CertificateType;
  /** DNS names and IP addresses. Server certificates always also get localhost, 127.0.0.1 and ::1. */
  readonly sans?: readonly string[];
  /** Default 365 days, cut to the CA's own end. */
  readonly validityDays?: number;
  /** A lifetime in milliseconds instead of `validityDays` (tests of certificate renewal). */
  readonly validityMs?: number;
}

/** Creates a self-signed RSA-2048 CA certificate (basicConstraints CA, keyCertSign + cRLSign) and its key. */
export function createCertificateAuthority(options: CreateCaOptions = {}): CertificateAndKey {
  const keys = generateRsaKeyPair();
  const cert = buildCertificate(keys, {
    commonName: options.commonName ?? 'ironlime CA',
    validityDays: options.validityDays ?? 3650,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return toPems(cert, keys.privateKey);
}

/**
 * Issues an end-entity certificate signed by `ca`, with a fresh key. Server certificates carry
 * serverAuth and subjectAltNames (the given ones plus localhost, 127.0.0.1, ::1); client certificates
 * carry clientAuth and the given subjectAltNames, if any. The certificate ends when the CA does, if
 * that is sooner than its `validityDays`. Throws `PkiError` when the CA pair is unusable, the CA is
 * expired or not yet valid, or a name is neither a DNS name nor an IP address.
 */
export function issueFromCa(ca: CertificateAndKey, options: IssueOptions): CertificateAndKey {
  const issuer = parseCertificateAndKey(ca, 'CA');
  if (!isCaCertificate(issuer.cert)) {
    throw new PkiError('CA: certificate is not a CA certificate (basicConstraints cA is not set)');
  }
  const problem = caValidityProblem(forgeValidityOf(issuer.cert), Date.now());
  if (problem !== undefined) {
    throw new PkiError(`CA: certificate ${problem}; it can issue nothing a peer accepts`);
  }
  const requested = options.sans ?? [];
  const altNames = toAltNames(options.type === 'server' ? [...requested, ...DEFAULT_SERVER_SANS] : requested);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    options.type === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
  ];
  if (altNames.length > 0) {
    extensions.push(subjectAltNameExtension(altNames));
  }
  const keys = generateRsaKeyPair();
  const cert = buildCertificate(keys, {
    commonName: options.commonName,
    validityDays: options.validityDays ?? 365,
    ...(options.validityMs === undefined ? {} : { validityMs: options.validityMs }),
    extensions,
    issuer,
    notAfterLimit: issuer.cert.validity.notAfter,
  });
  return toPems(cert, keys.privateKey);
}

function isCaCertificate(cert: forge.pki.Certificate): boolean {
  const basic = cert.getExtension('basicConstraints') as { cA?: boolean } | null;
  return basic?.cA === true;
}
