import type { X509Certificate } from 'node:crypto';

/** When a certificate is valid: `notBefore` to `notAfter`, Unix milliseconds. */
export interface CertificateValidity {
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

export function validityOf(certificate: X509Certificate): CertificateValidity {
  return { notBeforeMs: Date.parse(certificate.validFrom), notAfterMs: Date.parse(certificate.validTo) };
}

/**
 * Why a certificate is not valid at `nowMs` ("expired on …", "not valid before …"), or undefined when
 * it is. A key taken from a certificate is trusted only while this is undefined: at load, and again at
 * each use, so a certificate that expires while the process runs stops being trusted then. A date
 * that could not be read (NaN) fails closed: every comparison with NaN is false, which read as valid.
 */
export function validityProblem(validity: CertificateValidity, nowMs: number): string | undefined {
  if (Number.isNaN(validity.notBeforeMs) || Number.isNaN(validity.notAfterMs)) {
    return 'not valid: its validity dates cannot be read';
  }
  if (nowMs < validity.notBeforeMs) return `not valid before ${new Date(validity.notBeforeMs).toISOString()}`;
  if (nowMs > validity.notAfterMs) return `expired on ${new Date(validity.notAfterMs).toISOString()}`;
  return undefined;
}
