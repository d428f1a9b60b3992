/**
 * Errors of the KBS protocol as trustee's KBS names them (`kbs/src/error.rs`): each has a type, sent
 * as `https://github.com/confidential-containers/kbs/errors/<Type>` in an RFC 7807 body, and the HTTP
 * status KBS answers it with. These are wire errors of the broker, not ironlime's coded errors: the
 * Keylime envelope and docs/errors.md do not apply to `/kbs/v0`.
 */
export const KBS_ERROR_STATUS = {
  /** Admin request without a valid client certificate. */
  AdminAuth: 401,
  /** The Request's version or tee is not supported, the evidence did not verify, or the node is unknown or revoked. */
  AttestationError: 401,
  /** Unknown route, malformed path parameters, or a query string (none is served). */
  InvalidRequestPath: 404,
  /** The tee-pubkey cannot be used to wrap the resource. */
  JweError: 401,
  /** The resource does not exist. */
  PluginNotFound: 404,
  /** The resource policy does not allow this node. */
  PolicyDeny: 403,
  /** Malformed request body (JSON, fields, sizes). */
  SerdeError: 401,
  /** No session cookie and no bearer token. */
  TokenNotFound: 401,
  /** The session or token is invalid, expired, forged, untrusted or withdrawn. */
  TokenVerifierError: 401,
  /** An admin request a concurrent change overtook: a reinstatement during which the node was revoked again (ours, not trustee's). */
  AdminConflict: 409,
  /** The good-standing check could not ask the verifier: nothing released, try again later (ours, not trustee's; with `Retry-After`). */
  VerifierUnavailable: 503,
  /** A broker fault (database down, …): fail closed, say nothing more. */
  InternalError: 500,
} as const;

export type KbsErrorType = keyof typeof KBS_ERROR_STATUS;

export const KBS_ERROR_TYPE_PREFIX = 'https://github.com/confidential-containers/kbs/errors/';

/** A refusal answered as `{type, detail}` with the type's status. The detail must not leak secrets. */
export class KbsError extends Error {
  readonly type: KbsErrorType;

  constructor(type: KbsErrorType, detail: string, options: { cause?: unknown } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KbsError';
    this.type = type;
  }

  get status(): number {
    return KBS_ERROR_STATUS[this.type];
  }
}

/** The RFC 7807 body of a KBS error. */
export interface KbsProblem {
  readonly type: string;
  readonly detail: string;
}

export function problemBody(type: KbsErrorType, detail: string): KbsProblem {
  return { type: `${KBS_ERROR_TYPE_PREFIX}${type}`, detail };
}
