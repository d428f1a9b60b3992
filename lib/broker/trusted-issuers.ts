import { createPublicKey, type KeyObject } from 'node:crypto';
import { readConfiguredFile } from '../config/read-config-file.js';
import { InvalidConfig } from '../../interfaces/errors.js';
import { pemCertificates } from '../pki/pem-certificate.js';
import { validityOf, validityProblem, type CertificateValidity } from '../pki/certificate-validity.js';

/** An issuer whose EAR tokens a broker accepts: its `iss` and its ES256 public keys. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly keys: readonly KeyObject[];
  /** The certificate's validity when the keys came from one: outside it, the issuer's tokens are refused. */
  readonly validity?: CertificateValidity;
}

/**
 * Loads one `--trust-issuer` value: `[ISSUER=]FILE`, where FILE is a JWKS (the issuer broker writes
 * one, with an `issuer` member, to `<dataDir>/broker/token-issuer.jwks.json`) or a PEM certificate.
 * The issuer name comes from `ISSUER=` or the JWKS's `issuer`; without either the value is refused —
 * a key trusted for any `iss` would let one issuer speak for another. Only P-256 EC keys are kept
 * (ES256); a file with none is refused. A certificate not valid now (expired, or not yet valid) is
 * refused; its validity is kept and checked again on each token (`EarTokenVerifier`).
 *
 * @throws InvalidConfig naming the value at fault.
 */
export async function loadTrustedIssuer(spec: string, nowMs = Date.now()): Promise<TrustedIssuer> {
  const at = spec.indexOf('=');
  const named = at > 0 && !spec.slice(0, at).includes('/') ? spec.slice(0, at) : undefined;
  const file = named === undefined ? spec : spec.slice(at + 1);
  const text = await readConfiguredFile(file, 'broker.trustIssuers');
  const parsed = text.includes('-----BEGIN CERTIFICATE-----') ? fromCertificate(text, file) : fromJwks(text, file);
  const issuer = named ?? parsed.issuer;
  if (issuer === undefined || issuer.length === 0) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: name the issuer (ISSUER=${file})`);
  }
  const keys = parsed.keys.filter((key) => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (keys.length === 0) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: no EC P-256 (ES256) public key`);
  }
  if (parsed.validity !== undefined) {
    const problem = validityProblem(parsed.validity, nowMs);
    if (problem !== undefined) throw new InvalidConfig('broker.trustIssuers', `${file}: the certificate is ${problem}`);
  }
  return { issuer, keys, ...(parsed.validity === undefined ? {} : { validity: parsed.validity }) };
}

/**
 * Refuses trusted issuers that share a name with this broker's own issuer or with each other: a token
 * is checked only against the first issuer of its `iss` (`EarTokenVerifier`), so the keys of every
 * later one of that name were never tried — this broker's own tokens refused as "bad signature" when
 * it trusted another broker left at the default issuer name, as it is.
 *
 * @throws InvalidConfig naming the shared issuer.
 */
export function requireDistinctIssuers(trusted: readonly TrustedIssuer[], ownIssuer: string): void {
  const seen = new Set<string>([ownIssuer]);
  for (const { issuer } of trusted) {
    if (seen.has(issuer)) {
      const whose = issuer === ownIssuer ? 'this broker\'s own issuer name (give one of the two brokers another --issuer)' : 'the name of another trusted issuer';
      throw new InvalidConfig('broker.trustIssuers', `trusted issuer ${issuer} has ${whose}`);
    }
    seen.add(issuer);
  }
}

/**
 * The issuer's one certificate. Text around it is allowed, as in any certificate file an operator
 * keeps (`openssl x509 -text` writes the decoded certificate before it). A chain is refused rather
 * than read as its first certificate: which of its keys signs the tokens is the operator's to say.
 */
function fromCertificate(text: string, file: string): { issuer: string | undefined; keys: KeyObject[]; validity: CertificateValidity } {
  const certificates = pemCertificates(text, { textOutsideBlocks: true });
  if (certificates === undefined) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: not a PEM certificate`);
  }
  const [certificate] = certificates;
  if (certificates.length !== 1 || certificate === undefined) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: holds ${certificates.length} certificates; give the issuer's certificate alone`);
  }
  return { issuer: undefined, keys: [certificate.publicKey], validity: validityOf(certificate) };
}

function fromJwks(text: string, file: string): { issuer: string | undefined; keys: KeyObject[]; validity?: undefined } {
  let jwks: { issuer?: unknown; keys?: unknown };
  try {
    jwks = JSON.parse(text) as { issuer?: unknown; keys?: unknown };
  } catch (cause) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: not JSON`, { cause });
  }
  if (!Array.isArray(jwks.keys)) {
    throw new InvalidConfig('broker.trustIssuers', `${file}: a JWKS needs a "keys" array`);
  }
  const keys: KeyObject[] = [];
  for (const jwk of jwks.keys as unknown[]) {
    if (jwk !== null && typeof jwk === 'object' && !('d' in jwk)) {
      try {
        keys.push(createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }));
      } catch {
        // Keys of other kinds or malformed entries are skipped; no usable key at all is refused above.
      }
    }
  }
  return { issuer: typeof jwks.issuer === 'string' ? jwks.issuer : undefined, keys };
}
