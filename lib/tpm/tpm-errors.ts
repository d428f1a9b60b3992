import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * A TPM public key (or a template to build one) is well-formed but cannot be used: an algorithm,
 * curve or scheme we do not implement, an ECC point that is not on its curve, or key material that
 * contradicts its own parameters. Malformed bytes are a `TpmParseError` instead.
 */
export class TpmKeyError extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_TPM_KEY', `TPM key: ${detail}`, options);
  }
}

/** A well-formed AK no TPM key can be trusted as (`tpmKeyWeakness`: short RSA, ROCA): not malformed, untrusted. */
export class WeakAkError extends TpmKeyError {}

/** An X.509 certificate could not be read as DER or PEM. */
export class CertificateParseError extends IronlimeError {
  /** The message without its "certificate: " prefix, for callers that add their own context. */
  readonly detail: string;

  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_CERTIFICATE_PARSE', `certificate: ${detail}`, options);
    this.detail = detail;
  }
}

/**
 * The step of TPM2_ActivateCredential (Part 3 §12.5) that refused a blob: `secret`, the seed did not
 * decrypt under the EK (RSA-OAEP, or ECDH with the ephemeral point); `integrity`, the outer HMAC over
 * encIdentity ‖ AK name did not match; `credential`, the decrypted TPM2B_DIGEST did not fit.
 */
export type CredentialActivationStep = 'secret' | 'integrity' | 'credential';

/**
 * A credential blob did not activate: wrong EK, wrong AK name, or a tampered blob. Deliberately one
 * failure with one message for every cause (STYLE 7), so it cannot serve as an oracle. `step` keeps
 * the detail for our own logs and for the software TPM, which answers with the response code a TPM
 * gives for that step; never send it to the peer.
 */
export class CredentialActivationError extends IronlimeError {
  readonly step: CredentialActivationStep;

  constructor(step: CredentialActivationStep, options: IronlimeErrorOptions = {}) {
    super('ERR_CREDENTIAL_ACTIVATION', 'credential activation failed', options);
    this.step = step;
  }
}
