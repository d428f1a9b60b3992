import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CertStore } from './cert-store.js';
import { certificatesDer } from './cert-store.js';
import { readDerCertificate } from './certificate-quirks.js';
import { CertificateParseError } from './tpm-errors.js';
import { parsePublicArea, type TpmtPublic } from './tpmt-public.js';
import { publicKeyFromTpmtPublic } from './tpmt-public-key.js';

/** How far up a chain of supplied intermediates we follow before giving up. */
const MAX_CHAIN_DEPTH = 5;

/**
 * Intermediates sent with an EK certificate that are looked at, at most. Real vendor chains have one
 * or two; each one costs a signature check at every level, so an unbounded list is CPU for anyone.
 */
export const MAX_EK_INTERMEDIATES = 8;

/**
 * Signature checks one EK certificate may cost, store certificates included: enough for the EK
 * certificate and each intermediate to be checked once against the CA that signed it.
 */
export const MAX_EK_SIGNATURE_CHECKS = 1 + MAX_EK_INTERMEDIATES;

/** Largest RSA modulus of an intermediate: a signature check with an 8192-bit key costs ~16× a 2048-bit one. */
export const MAX_INTERMEDIATE_RSA_BITS = 4096;

/**
 * Largest RSA public exponent of an intermediate, in bits. OpenSSL caps it at 64 bits only for moduli
 * over 3072 bits: a 3072-bit key with a 3071-bit exponent costs ~8 ms a check, 70× a 4096-bit key
 * with 65537. Vendor CAs use 65537.
 */
export const MAX_INTERMEDIATE_RSA_EXPONENT_BITS = 64;

export type EkCertificateVerdict =
  | {
    readonly valid: true;
    /** Subjects from the EK certificate's issuer up to the store certificate that vouches for it. */
    readonly chain: readonly string[];
    /** Name of the store entry (file) that anchors the chain. */
    readonly anchor: string;
    /** Certificate quirks that had to be applied to read the EK certificate. */
    readonly quirks: readonly string[];
  }
  | { readonly valid: false; readonly reason: string; readonly quirks: readonly string[] };

export interface VerifyEkCertificateOptions {
  /**
   * Untrusted intermediates (DER or PEM, e.g. the chain an agent read from NV or swtpm's local CA
   * certificate) that may link the EK certificate to a store certificate. Each must be a CA.
   */
  readonly intermediates?: ReadonlyArray<Uint8Array | string>;
}

/** First certificate of DER or PEM input, with the quirks needed to read it. */
function readOne(input: Uint8Array | string): { cert: X509Certificate; quirks: readonly string[] } {
  const [der] = certificatesDer(input);
  if (der === undefined) {
    throw new CertificateParseError('no certificate');
  }
  return readDerCertificate(der);
}

/**
 * Whether `issuer` may have issued `cert`, without checking the signature: checkIssued compares
 * issuer and subject names (OpenSSL canonical form), key identifiers and the issuer's keyUsage.
 */
function namesIssuer(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer);
  } catch {
    return false;
  }
}

/**
 * Whether `issuer`'s key signed `cert`. A key or signature OpenSSL cannot decode (corrupt algorithm
 * bytes) makes verify throw: such a certificate vouches for nothing.
 */
function signatureVerifies(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * The certificate's public key. OpenSSL parses a certificate whose SubjectPublicKeyInfo algorithm
 * bytes are corrupt and fails only when the key is asked for (issue 11 item 5: this was a bare Error
 * and an HTTP 500 at registration).
 *
 * @throws CertificateParseError
 */
export function certificatePublicKey(cert: X509Certificate): KeyObject {
  try {
    return cert.publicKey;
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    throw new CertificateParseError(
      `its public key cannot be read (corrupt or unsupported algorithm${typeof code === 'string' ? `, ${code}` : ''})`,
      { cause },
    );
  }
}

/**
 * Checks an EK certificate against a CA store the way Keylime's `cert_utils.verify_ek` does
 * (keylime-protocol §5.3): a store certificate whose subject is the EK certificate's issuer must
 * have signed it. Unlike Keylime, the chain may also pass through `intermediates` (each a CA, each
 * issued by the next) until it reaches any store certificate; more than `MAX_EK_INTERMEDIATES` of
 * them, or one whose key is costly to check with (`costlyKey`: RSA over `MAX_INTERMEDIATE_RSA_BITS` or
 * with an exponent over `MAX_INTERMEDIATE_RSA_EXPONENT_BITS`, EC on a curve other than P-256, P-384 and
 * P-521, a key neither RSA nor EC), makes the verdict invalid before any signature is checked (hostile
 * input must not cost seconds of CPU). Each intermediate joins the chain at most once, and the walk
 * makes at most `MAX_EK_SIGNATURE_CHECKS` checks in all, store certificates included. Every store certificate is a trust
 * anchor, as in Keylime. Validity dates and EKUs are NOT checked (EK certificates routinely outlive
 * their CAs' validity; Keylime does not check them either). Throws `CertificateParseError` when the
 * EK certificate cannot be read at all.
 */
export function verifyEkCertificate(
  ekCert: Uint8Array | string,
  store: CertStore,
  options: VerifyEkCertificateOptions = {},
): EkCertificateVerdict {
  const { cert: leaf, quirks } = readOne(ekCert);
  const supplied = options.intermediates ?? [];
  if (supplied.length > MAX_EK_INTERMEDIATES) {
    return { valid: false, reason: `EK certificate: ${supplied.length} certificates were sent with it, at most ${MAX_EK_INTERMEDIATES} are looked at`, quirks };
  }
  const intermediates = supplied.map((i) => readOne(i).cert);
  for (const intermediate of intermediates) {
    const costly = costlyKey(intermediate);
    if (costly !== undefined) {
      return { valid: false, reason: `EK certificate: the certificate "${oneLine(intermediate.subject)}" sent with it has ${costly}`, quirks };
    }
  }
  // A sent CA joins the chain at most once (no loops). One whose signature did not match stays a
  // candidate: with a key rollover the CA that did not sign this link may sign the next one, and the
  // check budget, not a rule per CA, bounds what same-named CAs that sign each other cost.
  const unused = new Set(intermediates.filter((i) => i.ca));
  let checks = 0;
  const chain: string[] = [];
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth += 1) {
    chain.push(oneLine(current.issuer));
    const child = current;
    const anchors = store.entries.filter((entry) => namesIssuer(child, entry.cert));
    const candidates = [...unused].filter((i) => namesIssuer(child, i));
    let next: X509Certificate | undefined;
    for (const issuer of [...anchors.map((entry) => entry.cert), ...candidates]) {
      if (checks === MAX_EK_SIGNATURE_CHECKS) {
        return { valid: false, reason: `EK certificate: no chain to the store was found within ${MAX_EK_SIGNATURE_CHECKS} signature checks`, quirks };
      }
      checks += 1;
      if (signatureVerifies(child, issuer)) {
        next = issuer;
        break;
      }
    }
    const anchor = anchors.find((entry) => entry.cert === next);
    if (anchor !== undefined) {
      return { valid: true, chain, anchor: anchor.name, quirks };
    }
    if (next === undefined) {
      break;
    }
    unused.delete(next);
    current = next;
  }
  return {
    valid: false,
    reason: `EK certificate: no certificate in the store signed "${chain.at(-1) ?? oneLine(leaf.issuer)}"`,
    quirks,
  };
}

/**
 * True when the EK public area and the EK certificate hold the same public key (keylime-protocol
 * §1.3 step 3: the registrar compares them). Throws `TpmParseError`/`TpmKeyError` for a bad public
 * area and `CertificateParseError` for an unreadable certificate.
 */
export function ekPublicMatchesCertificate(ekPublic: Uint8Array | TpmtPublic, ekCert: Uint8Array | string): boolean {
  const pub = ekPublic instanceof Uint8Array ? parsePublicArea(ekPublic) : ekPublic;
  return certificateHoldsKey(ekCert, publicKeyFromTpmtPublic(pub));
}

/** True when the certificate's public key is `key`. Throws `CertificateParseError` for an unreadable certificate. */
export function certificateHoldsKey(cert: Uint8Array | string, key: KeyObject): boolean {
  return key.equals(certificatePublicKey(readOne(cert).cert));
}

/** OpenSSL's names of NIST P-256, P-384 and P-521: the NIST curves of TCG's EK Credential Profile 2.x templates; vendor EK CAs use P-256 and P-384. */
const EK_CA_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/**
 * Why checking a signature with this intermediate's key could cost more than a vendor chain's, or
 * undefined. Only RSA (bounded modulus and exponent) and EC keys on the NIST prime curves are looked
 * at: a DSA key of ~10,000 bits costs ~15 ms a check, one on the binary curve sect571k1 or on a
 * curve spelled out in the certificate (OpenSSL reads prime fields of up to 661 bits) 3–5 ms, and no
 * EK CA uses them. A key OpenSSL cannot decode vouches for nothing and costs nothing (its check fails).
 */
function costlyKey(cert: X509Certificate): string | undefined {
  let key: KeyObject;
  try {
    key = cert.publicKey;
  } catch {
    return undefined;
  }
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== undefined && EK_CA_CURVES.has(curve)) return undefined;
    const named = curve === undefined || curve === 'UNDEF' ? 'a curve that has no name' : curve;
    return `an EC key on ${named} (only P-256, P-384 and P-521 are looked at)`;
  }
  if (type !== 'rsa' && type !== 'rsa-pss') return `a ${type ?? 'unknown'} key (only RSA and EC keys are looked at)`;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits > MAX_INTERMEDIATE_RSA_BITS) return `a ${bits}-bit RSA key (at most ${MAX_INTERMEDIATE_RSA_BITS})`;
  const exponentBits = (key.asymmetricKeyDetails?.publicExponent ?? 0n).toString(2).length;
  if (exponentBits > MAX_INTERMEDIATE_RSA_EXPONENT_BITS) {
    return `an RSA key with a ${exponentBits}-bit public exponent (at most ${MAX_INTERMEDIATE_RSA_EXPONENT_BITS})`;
  }
  return undefined;
}

function oneLine(name: string | undefined): string {
  return (name ?? '').split('\n').join(', ');
}
