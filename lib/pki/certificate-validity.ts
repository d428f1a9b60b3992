import type { X509Certificate } from 'node:crypto';
import type forge from 'node-forge';

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

/**
 * How far a CA's `notBefore` may lie ahead of this host's clock: Keylime's CA tool dates a CA from the
 * second it is made, so one made on another host a few seconds ahead would otherwise stop a fresh
 * install. The same margin our own certificates are backdated by (x509-builder).
 */
export const CA_NOT_BEFORE_TOLERANCE_MS = 5 * 60 * 1000;

/**
 * `validityProblem` for a CA being loaded: as strict on its end, but a `notBefore` up to
 * `CA_NOT_BEFORE_TOLERANCE_MS` ahead is taken as clock skew between hosts, not as a CA not yet valid.
 */
export function caValidityProblem(validity: CertificateValidity, nowMs: number): string | undefined {
  const problem = validityProblem(validity, nowMs);
  return problem !== undefined && nowMs < validity.notBeforeMs && validity.notBeforeMs - nowMs <= CA_NOT_BEFORE_TOLERANCE_MS ? undefined : problem;
}

/** The validity of a node-forge certificate, as `validityOf` reads a node:crypto one. */
export function forgeValidityOf(certificate: forge.pki.Certificate): CertificateValidity {
  return { notBeforeMs: certificate.validity.notBefore.getTime(), notAfterMs: certificate.validity.notAfter.getTime() };
}

/** A CA with less than this left is warned about whenever it is loaded: what it issued ends with it. */
const CA_EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The warning for a CA (`what` names it) that ends within `CA_EXPIRY_WARNING_DAYS` of `nowMs`, or undefined. */
export function caExpiryWarning(what: string, validity: CertificateValidity, nowMs: number): string | undefined {
  const leftMs = validity.notAfterMs - nowMs;
  if (leftMs >= CA_EXPIRY_WARNING_DAYS * DAY_MS) return undefined;
  const days = Math.max(0, Math.floor(leftMs / DAY_MS));
  return `${what} expires on ${new Date(validity.notAfterMs).toISOString()} (${days} days left): every certificate it issued stops working then; create a new CA and reissue them before (docs/pki.md)`;
}
