import { X509Certificate } from 'node:crypto';
import { CertificateParseError } from './tpm-errors.js';

/**
 * Certificates real TPMs ship that a strict DER reader rejects (STYLE 8: named, isolated, tested).
 * The strict path runs first; a quirk is applied only when it fails, and the caller is told which.
 *
 * Not listed because OpenSSL (under node:crypto) already reads them as Keylime's OpenSSL path does:
 * - issuer/subject RDN SETs not in DER order (Nuvoton TPM Root CA 2110, Keylime issue #944): the
 *   name is kept as encoded and issuer matching uses OpenSSL's canonical form.
 */
export interface CertificateQuirk {
  readonly id: string;
  /** Which certificates are known to need it. */
  readonly affects: string;
  /** Where the problem is described upstream. */
  readonly source: string;
  /** The repaired DER, or null when the quirk does not apply to `der`. */
  apply(der: Uint8Array): Uint8Array | null;
}

/** Length of the outer DER TLV at the start of `der` (tag + length + content), or null if unreadable. */
export function outerTlvLength(der: Uint8Array): number | null {
  if (der.length < 2 || der[0] !== 0x30) {
    return null;
  }
  const first = der[1] ?? 0;
  if (first < 0x80) {
    return 2 + first;
  }
  const octets = first & 0x7f;
  if (octets === 0 || octets > 4 || der.length < 2 + octets) {
    return null;
  }
  let length = 0;
  for (let i = 0; i < octets; i += 1) {
    length = length * 256 + (der[2 + i] ?? 0);
  }
  return 2 + octets + length;
}

export const CERTIFICATE_QUIRKS: readonly CertificateQuirk[] = [
  {
    id: 'trailing-data-after-certificate',
    affects: 'STMicroelectronics RSA EK certificates read from NV (padding after the DER certificate)',
    source: 'keylime test/test_cert_utils.py test_verify_ek ("ExtraData" from strict parsers); keylime cert_utils.py',
    apply(der) {
      const length = outerTlvLength(der);
      return length !== null && length < der.length ? der.subarray(0, length) : null;
    },
  },
];

/** A certificate with the quirks that had to be applied to read it. */
export interface ReadCertificate {
  readonly cert: X509Certificate;
  readonly quirks: readonly string[];
}

function strictRead(der: Uint8Array): X509Certificate | null {
  if (outerTlvLength(der) !== der.length) {
    return null;
  }
  try {
    return new X509Certificate(der);
  } catch {
    return null;
  }
}

/**
 * Reads one DER certificate: strictly first (one DER SEQUENCE spanning every byte, accepted by
 * OpenSSL), then through each quirk in turn. Throws `CertificateParseError` if nothing works.
 */
export function readDerCertificate(der: Uint8Array): ReadCertificate {
  const strict = strictRead(der);
  if (strict !== null) {
    return { cert: strict, quirks: [] };
  }
  for (const quirk of CERTIFICATE_QUIRKS) {
    const repaired = quirk.apply(der);
    const cert = repaired === null ? null : strictRead(repaired);
    if (cert !== null) {
      return { cert, quirks: [quirk.id] };
    }
  }
  throw new CertificateParseError(`${der.length} bytes are not a DER X.509 certificate`);
}
