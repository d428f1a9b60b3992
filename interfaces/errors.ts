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
  ERR_NODE_NOT_FOUND: 404,
  ERR_DATABASE_UNAVAILABLE: 503,
  ERR_TPM_PARSE: 400,
  ERR_IMA_PARSE: 400,
  ERR_POLICY_INVALID: 400,
  ERR_POLICY_SIGNATURE_INVALID: 401,
  ERR_EVENT_LOG_PARSE: 400,
  ERR_MB_REFSTATE_INVALID: 400,
  ERR_TPM_KEY: 400,
  ERR_CERTIFICATE_PARSE: 400,
  ERR_CREDENTIAL_ACTIVATION: 400,
  ERR_TPM_ACCESS: 500,
  ERR_INVALID_REQUEST: 400,
  ERR_UNSUPPORTED_API_VERSION: 400,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_SERVICE_BUSY: 503,
  ERR_AGENT_BUSY: 500,
  ERR_SERVICE_UNREACHABLE: 503,
  ERR_REMOTE_HTTP_STATUS: 502,
  ERR_BAD_REMOTE_REPLY: 502,
  ERR_PKI: 500,
  ERR_REGISTRATION_CONFLICT: 403,
  ERR_REGISTRAR_FULL: 403,
  ERR_REVOCATION_QUEUE_FULL: 503,
  ERR_INVALID_AGENT_DATA: 400,
  ERR_EK_CERT_UNTRUSTED: 403,
  ERR_ACTIVATION_FAILED: 400,
  ERR_AGENT_KEY: 400,
  ERR_CONFLICT: 409,
  ERR_TIMEOUT: 504,
  ERR_AUDIT_FORMAT: 400,
  ERR_TOKEN_REFUSED: 401,
  ERR_TRUST_LEVEL_TOO_LOW: 409,
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

/**
 * A `driver_info` (or other caller-supplied) field is present but unusable. `field` names it, so an
 * operator sees "driver_info.keylime_agent_port: must be an integer from 1 to 65535".
 */
export class InvalidParameterValue extends IronlimeError {
  readonly field: string;

  constructor(field: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_INVALID_PARAMETER_VALUE', `${field}: ${detail}`, options);
    this.field = field;
  }
}

/** Required fields are missing; `fields` lists every one of them, so one round trip fixes them all. */
export class MissingParameterValue extends IronlimeError {
  readonly fields: readonly string[];

  constructor(fields: readonly string[], where = 'driver_info') {
    super('ERR_MISSING_PARAMETER_VALUE', `${where} is missing required field(s): ${fields.join(', ')}`);
    this.fields = Object.freeze([...fields]);
  }
}

/**
 * The node is untrusted: the attestation service examined it and found it tampered with, or it could
 * not be attested and the caller fails closed. `reasons` are human-readable findings; `eventIds` are
 * Keylime event ids (for example `ima.validation.ima-ng.not_in_allowlist`) when the verifier gave any.
 */
export class AttestationFailed extends IronlimeError {
  readonly reasons: readonly string[];
  readonly eventIds: readonly string[];

  constructor(reasons: readonly string[], eventIds: readonly string[] = [], options: IronlimeErrorOptions = {}) {
    const summary = reasons.length > 0 ? reasons.join('; ') : 'no reason given';
    super('ERR_ATTESTATION_FAILED', `attestation failed: ${summary}`, options);
    this.reasons = Object.freeze([...reasons]);
    this.eventIds = Object.freeze([...eventIds]);
  }
}

/**
 * The node's identity is worth less than the step requires (docs/identity.md): `level` is what the
 * registrar granted it, `minimum` what the configuration, `driver_info` or an operator's acceptance
 * asks for `step`. Raised under the same fail flags as an attestation failure.
 */
export class TrustLevelTooLow extends IronlimeError {
  readonly step: string;
  readonly level: string;
  readonly minimum: string;

  constructor(step: string, level: string, minimum: string, reason: string) {
    super('ERR_TRUST_LEVEL_TOO_LOW', `trust level too low: ${reason}`);
    this.step = step;
    this.level = level;
    this.minimum = minimum;
  }
}

/** The attestation service could not be reached or did not answer in time; nothing was decided. */
export class AttestationServiceUnavailable extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_ATTESTATION_SERVICE_UNAVAILABLE', `attestation service unavailable: ${detail}`, options);
  }
}

function enabledList(enabled: readonly string[]): string {
  return enabled.length > 0 ? enabled.join(', ') : '(none)';
}

/** No attestation interface is registered under `name`; `enabled` lists the names that would work. */
export class InterfaceNotFound extends IronlimeError {
  readonly interfaceName: string;
  readonly enabled: readonly string[];

  constructor(interfaceName: string, enabled: readonly string[]) {
    super(
      'ERR_INTERFACE_NOT_FOUND',
      `attestation interface "${interfaceName}" does not exist; enabled interfaces: ${enabledList(enabled)}`,
    );
    this.interfaceName = interfaceName;
    this.enabled = Object.freeze([...enabled]);
  }
}

/** The attestation interface `name` exists but is not in `enabledAttestationInterfaces`. */
export class InterfaceNotEnabled extends IronlimeError {
  readonly interfaceName: string;
  readonly enabled: readonly string[];

  constructor(interfaceName: string, enabled: readonly string[]) {
    super(
      'ERR_INTERFACE_NOT_ENABLED',
      `attestation interface "${interfaceName}" is not enabled; enabled interfaces: ${enabledList(enabled)}`,
    );
    this.interfaceName = interfaceName;
    this.enabled = Object.freeze([...enabled]);
  }
}

/** The configuration is invalid; `field` names the offending setting (dotted path or variable name). */
export class InvalidConfig extends IronlimeError {
  readonly field: string;

  constructor(field: string, detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_INVALID_CONFIG', `invalid config: ${field}: ${detail}`, options);
    this.field = field;
  }
}

/** No node with this uuid is stored. */
export class NodeNotFound extends IronlimeError {
  readonly nodeUuid: string;

  constructor(nodeUuid: string) {
    super('ERR_NODE_NOT_FOUND', `node ${nodeUuid} not found`);
    this.nodeUuid = nodeUuid;
  }
}

/** Another node already has this uuid or name (the `nodes` table's unique keys). */
export class NodeAlreadyExists extends IronlimeError {
  readonly field: 'uuid' | 'name';

  constructor(field: 'uuid' | 'name', value: string, options: IronlimeErrorOptions = {}) {
    super('ERR_CONFLICT', `a node with ${field} ${JSON.stringify(value)} already exists`, options);
    this.field = field;
  }
}

/** The database could not be opened or reached. */
export class DatabaseUnavailable extends IronlimeError {
  constructor(detail: string, options: IronlimeErrorOptions = {}) {
    super('ERR_DATABASE_UNAVAILABLE', `database unavailable: ${detail}`, options);
  }
}
