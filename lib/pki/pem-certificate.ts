import { X509Certificate } from 'node:crypto';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** How strictly the text around the certificate blocks is read. */
export interface PemCertificateReading {
  /**
   * Whether text other than whitespace may stand outside the blocks, as in a CA bundle file (comments,
   * `openssl x509 -text` output); a certificate sent over the network (`mtls_cert`) holds none.
   */
  readonly textOutsideBlocks?: boolean;
}

/**
 * The certificates of a PEM text, or undefined when it is not one: at least one CERTIFICATE block, each
 * a base64 body (RFC 7468 §2) that is one DER X.509 certificate and nothing after it. Node's
 * `X509Certificate` reads only the first block and skips what surrounds it, so a certificate followed
 * by a second one, by garbage, or by a block that is not a certificate passed as readable, while a TLS
 * context given the same text trusts every certificate in it. Linear in the text.
 */
export function pemCertificates(text: string, reading: PemCertificateReading = {}): X509Certificate[] | undefined {
  const certificates: X509Certificate[] = [];
  let position = 0;
  for (;;) {
    const begin = text.indexOf(BEGIN, position);
    if (!outsideAllowed(text.slice(position, begin < 0 ? text.length : begin), reading)) return undefined;
    if (begin < 0) return certificates.length > 0 ? certificates : undefined;
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end < 0) return undefined;
    const certificate = derCertificate(text.slice(begin + BEGIN.length, end));
    if (certificate === undefined) return undefined;
    certificates.push(certificate);
    position = end + END.length;
  }
}

/** The one certificate of a PEM text holding exactly one and nothing else (`pemCertificates`), or undefined. */
export function singlePemCertificate(text: string): X509Certificate | undefined {
  const certificates = pemCertificates(text);
  return certificates?.length === 1 ? certificates[0] : undefined;
}

/** Whether `text` is exactly one readable PEM certificate (`singlePemCertificate`): an `mtls_cert`. */
export function isPemCertificate(text: string): boolean {
  return singlePemCertificate(text) !== undefined;
}

function outsideAllowed(outside: string, reading: PemCertificateReading): boolean {
  // A BEGIN line of another kind is a block, not explanatory text: a bundle of certificates holds none.
  if (outside.includes('-----BEGIN ') || outside.includes('-----END ')) return false;
  return reading.textOutsideBlocks === true || outside.trim() === '';
}

function derCertificate(body: string): X509Certificate | undefined {
  const base64 = body.replace(/\s+/g, '');
  if (base64.length === 0 || base64.length % 4 !== 0 || !BASE64.test(base64)) return undefined;
  const der = Buffer.from(base64, 'base64');
  try {
    const certificate = new X509Certificate(der);
    // Bytes after the certificate's DER are not read by the parser: refused, not ignored. `raw` is
    // OpenSSL's re-encoding, so a non-minimal length outside the TBS (which OpenSSL and Node accept) is
    // refused too: stricter than needed, but no certificate in the vectors or fixtures has one.
    return certificate.raw.equals(der) ? certificate : undefined;
  } catch {
    return undefined;
  }
}
