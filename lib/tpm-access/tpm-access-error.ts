import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/** TPM_RC_INITIALIZE (TPM 2.0 Part 2, §6.6.3): TPM2_Startup has not run since the TPM powered on. */
export const TPM_RC_INITIALIZE = 0x100;

/** TPM_RC_SESSION_MEMORY (Part 2, §6.6.3): no room for another loaded session. */
export const TPM_RC_SESSION_MEMORY = 0x903;

export interface TpmAccessErrorOptions extends IronlimeErrorOptions {
  /** The TPM (or TSS) response code, when the failure came from the TPM. */
  responseCode?: number;
}

/**
 * The node's TPM could not be used: a tpm2-tools command failed or timed out, swtpm did not start, or
 * the software TPM refused an operation. `responseCode` carries the TPM_RC when there is one, so a
 * caller can branch on it (the adapter does, for TPM_RC_INITIALIZE).
 */
export class TpmAccessError extends IronlimeError {
  readonly responseCode: number | undefined;

  constructor(message: string, options: TpmAccessErrorOptions = {}) {
    super('ERR_TPM_ACCESS', message, options);
    this.responseCode = options.responseCode;
  }
}

/** Hex form of a response code for messages: `0x00000100`. */
export function formatResponseCode(rc: number): string {
  return `0x${rc.toString(16).padStart(8, '0')}`;
}
