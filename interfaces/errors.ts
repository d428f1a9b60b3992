/**
 * The typed error hierarchy shared by every layer. Each error carries a stable `code`; callers branch
 * on the class or the code, never on the message. `ERROR_CODES` is the one table of codes and the one
 * place that maps a code to an HTTP status (services turn it into Keylime's `{code, status, results}`
 * envelope). `docs/errors.md` documents every code; a test keeps the two in step.
 */

/** Every error code ironlime raises, with the HTTP status a service answers when it reaches a client. */
export const ERROR_CODES = {
  ERR_INVALID_PARAMETER_VALUE: 400,
  ERR_MISSING_PARAMETER_VALUE: 400,
  ERR_ATTESTATION_FAILED: 409,
  ERR_ATTESTATION_SERVICE_UNAVAILABLE: 503,
  ERR_INTERFACE_NOT_FOUND: 400,
  ERR_INTERFACE_NOT_ENABLED: 400,
  ERR_INVALID_CONFIG: 500,
  ERR_TPM_PARSE: 400,
  ERR_IMA_PARSE: 400,
  ERR_EVENT_LOG_PARSE: 400,
  ERR_TPM_ACCESS: 503,
  ERR_INVALID_REQUEST: 400,
  ERR_UNSUPPORTED_API_VERSION: 400,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_SERVICE_UNREACHABLE: 503,
  ERR_REMOTE_HTTP_STATUS: 502,
  ERR_BAD_REMOTE_REPLY: 502,
  ERR_PKI: 500,
  ERR_REGISTRATION_CONFLICT: 403,
  ERR_INVALID_AGENT_DATA: 400,
  ERR_EK_CERT_UNTRUSTED: 403,
  ERR_ACTIVATION_FAILED: 400,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface IronlimeErrorOptions {
  cause?: unknown;
}

/** Base class of every error ironlime throws on purpose. */
export class IronlimeError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: IronlimeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }

  /** The HTTP status a service answers with when this error reaches a client. */
  get httpStatus(): number {
    return ERROR_CODES[this.code];
  }
}
