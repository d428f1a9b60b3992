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
 * A credential blob did not activate: wrong EK, wrong AK name, or a tampered blob. Deliberately one
 * failure with one message for every cause (STYLE 7), so it cannot serve as an oracle.
 */
export class CredentialActivationError extends IronlimeError {
  constructor(options: IronlimeErrorOptions = {}) {
    super('ERR_CREDENTIAL_ACTIVATION', 'credential activation failed', options);
  }
}
