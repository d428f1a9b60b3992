import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { PkiError } from './pki-error.js';
import { newRsaKeyPairSync } from './rsa-key-source.js';
import type { ForgeAltName } from './subject-alt-names.js';

/** Certificates start a little in the past so that peers with a slow clock accept them at once. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM (key in PKCS#1 `RSA PRIVATE KEY` form). */
export interface CertificateAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Where a new certificate's signature and issuer name come from. */
export interface Signer {
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

export interface BuildOptions {
  readonly commonName: string;
  readonly validityDays: number;
  /** Replaces `validityDays` with a lifetime in milliseconds (tests of certificate renewal). */
  readonly validityMs?: number;
  /** node-forge extension objects (basicConstraints, keyUsage, extKeyUsage, subjectAltName, …). */
  readonly extensions: readonly object[];
  /** Absent: the certificate signs itself. */
  readonly issuer?: Signer;
  /** The latest `notAfter` allowed (the issuer's own): a certificate never outlives the CA that vouches for it. */
  readonly notAfterLimit?: Date;
}

/**
 * A new RSA-2048 key pair (e = 65537; node-forge signs only with RSA, ECDSA P-256 is not available
 * there) from node:crypto's native generator, in node-forge's form.
 */
export function generateRsaKeyPair(): forge.pki.rsa.KeyPair {
  const { privateKey } = newRsaKeyPairSync();
  const key = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

/**
 * Builds and signs (SHA-256 with RSA) one X.509 v3 certificate with a random positive 128-bit serial
 * (RFC 5280 §4.1.2.2), subject `CN=<commonName>, O=ironlime`, subject key identifier, and, when an
 * issuer is given, its authority key identifier. The extensions are taken as given.
 */
export function buildCertificate(keys: forge.pki.rsa.KeyPair, options: BuildOptions): forge.pki.Certificate {
  if (!Number.isInteger(options.validityDays) || options.validityDays < 1 || options.validityDays > 36500) {
    throw new PkiError(`validity of ${options.validityDays} days is outside 1..36500`);
  }
  if (options.validityMs !== undefined && !(Number.isInteger(options.validityMs) && options.validityMs >= 1000)) {
    throw new PkiError(`validity of ${options.validityMs} ms is not a whole number of at least 1000`);
  }
  const lifetimeMs = options.validityMs ?? options.validityDays * DAY_MS;
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialHex();
  const now = Date.now();
  cert.validity.notBefore = new Date(now - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(Math.min(now + lifetimeMs, options.notAfterLimit?.getTime() ?? Infinity));
  const subject = [
    { name: 'commonName', value: options.commonName },
    { name: 'organizationName', value: 'ironlime' },
  ];
  cert.setSubject(subject);
  const issuer = options.issuer;
  cert.setIssuer(issuer === undefined ? subject : issuer.cert.subject.attributes);
  const keyIds: object[] = [{ name: 'subjectKeyIdentifier' }];
  if (issuer !== undefined) {
    keyIds.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuer.cert.generateSubjectKeyIdentifier().getBytes() });
  }
  cert.setExtensions([...options.extensions, ...keyIds]);
  cert.sign(issuer === undefined ? keys.privateKey : issuer.key, forge.md.sha256.create());
  return cert;
}

/** PEM of a certificate and key pair, with `\n` line ends. */
export function toPems(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): CertificateAndKey {
  return { certPem: forge.pki.certificateToPem(cert), keyPem: forge.pki.privateKeyToPem(key) };
}

/** The subjectAltName extension in node-forge's shape. */
export function subjectAltNameExtension(altNames: readonly ForgeAltName[]): object {
  return { name: 'subjectAltName', altNames: [...altNames] };
}

/**
 * Parses a PEM certificate and an RSA private key and checks that the key belongs to the certificate.
 * `what` names the pair in error messages ("CA in /etc/ironlime/ca").
 */
export function parseCertificateAndKey(pems: CertificateAndKey, what: string): Signer {
  let cert: forge.pki.Certificate;
  let key: forge.pki.rsa.PrivateKey;
  try {
    cert = forge.pki.certificateFromPem(pems.certPem);
  } catch (error) {
    throw new PkiError(`${what}: certificate is not a PEM X.509 RSA certificate`, { cause: error });
  }
  try {
    key = forge.pki.privateKeyFromPem(pems.keyPem);
  } catch (error) {
    throw new PkiError(`${what}: private key is not a PEM RSA private key`, { cause: error });
  }
  const publicKey = cert.publicKey as forge.pki.rsa.PublicKey;
  if (publicKey.n.compareTo(key.n) !== 0 || publicKey.e.compareTo(key.e) !== 0) {
    throw new PkiError(`${what}: private key does not belong to the certificate`);
  }
  return { cert, key };
}

function randomSerialHex(): string {
  const serial = randomBytes(16);
  // DER INTEGER: clear the sign bit so the serial is positive, and keep it non-zero.
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  return serial.toString('hex');
}
