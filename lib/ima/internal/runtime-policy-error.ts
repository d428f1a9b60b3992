import { IronlimeError, type IronlimeErrorOptions } from '../../../interfaces/errors.js';

/**
 * A runtime policy, flat allowlist, exclude list or IMA keyring could not be accepted. `field` names
 * the offending part as a JSON path (`digests["/usr/bin/dd"][0]`, `excludes[2]`, `allowlist line 7`),
 * so an operator can fix it without guessing.
 */
export class RuntimePolicyError extends IronlimeError {
  readonly field: string;

  constructor(field: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_POLICY_INVALID', `runtime policy: ${field}: ${detail}`, options);
    this.field = field;
  }
}

/** A DSSE-signed runtime policy does not verify with the key it was checked against (Keylime answers 401). */
export class PolicySignatureError extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_POLICY_SIGNATURE_INVALID', `runtime policy signature: ${detail}`, options);
  }
}
