import { IsArray, IsIn, IsInt, IsOptional, IsString, ValidateBy } from 'class-validator';
import { Accepts, isNonNegativeInteger, isNonNegativeNumber, isText, periodSeconds } from './status-field-rules.js';

/**
 * Shapes of the verifier's `results` as its client (`VerifierClient`) checks them (spec §4.2). Extra fields a newer
 * verifier adds are dropped; missing or mistyped ones are a `BadRemoteReplyError`.
 */
export class VerifierAgentStatus {
  /**
   * Spec §6.1 state code. Absent or null from a Keylime verifier in push mode (a push record has no
   * state; its verdict is `attestation_status`); a code Keylime does not define is not a bad reply
   * (`judgeVerifierStatus` waits on it).
   */
  @IsOptional()
  @Accepts('a state code', isNonNegativeInteger)
  operational_state?: number | null;

  @IsOptional()
  @IsString()
  ip?: string | null;

  @IsOptional()
  @IsInt()
  port?: number | null;

  @IsOptional()
  @IsString()
  tpm_policy?: string;

  /** The enrolment's `metadata` JSON text, where the keylime driver keeps its policy fingerprint. */
  @IsOptional()
  @Accepts('a string', isText)
  meta_data?: string | null;

  @IsOptional()
  @IsIn([0, 1])
  has_mb_refstate?: number;

  @IsOptional()
  @IsIn([0, 1])
  has_runtime_policy?: number;

  @IsOptional()
  @IsString()
  hash_alg?: string | null;

  @IsOptional()
  @IsString()
  enc_alg?: string | null;

  @IsOptional()
  @IsString()
  sign_alg?: string | null;

  @IsOptional()
  @IsString()
  verifier_id?: string;

  @IsOptional()
  @Accepts('an integer', isNonNegativeInteger)
  severity_level?: number | null;

  @IsOptional()
  @Accepts('a string', isText)
  last_event_id?: string | null;

  @IsOptional()
  @Accepts('a count', isNonNegativeInteger)
  attestation_count?: number | null;

  @IsOptional()
  @IsInt()
  last_received_quote?: number;

  /** Unix seconds, a fraction allowed. */
  @IsOptional()
  @Accepts('unix seconds', isNonNegativeNumber)
  last_successful_attestation?: number | null;

  /** `PASS`, `FAIL`, `PENDING`, `TIMEOUT` (API ≥ 2.5): left as text, judged by `judgeVerifierStatus`. */
  @IsOptional()
  @Accepts('a string', isText)
  attestation_status?: string | null;

  /** `"2s"` (API ≥ 2.5), or a number of seconds. */
  @IsOptional()
  @Accepts('a period such as "2s"', (value) => periodSeconds(value) !== undefined)
  attestation_period?: string | number | null;
}

/** An id as Keylime's verifier lists it: a string, or a one-element list holding one (a SQLAlchemy row). */
function isListedAgentId(value: unknown): boolean {
  return typeof value === 'string' || (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string');
}

/**
 * `GET /agents`: Keylime's verifier may nest ids in one-element lists; both forms are accepted. Any
 * other entry (null, an empty list, an object) is refused: it was printed as "null", "undefined" or
 * "[object Object]", an agent id that does not exist.
 */
export class VerifierAgentList {
  @IsArray()
  @ValidateBy({
    name: 'agentIds',
    validator: {
      validate: (value: unknown) => Array.isArray(value) && value.every(isListedAgentId),
      defaultMessage: () => 'must list agent ids: strings, or one-element lists of a string',
    },
  })
  uuids!: (string | [string])[];
}

export class RuntimePolicyNames {
  @IsArray()
  @IsString({ each: true })
  'runtimepolicy names'!: string[];
}

export class MbPolicyNames {
  @IsArray()
  @IsString({ each: true })
  'mbpolicy names'!: string[];
}

export class StoredRuntimePolicyResults {
  @IsString()
  name!: string;

  @IsString()
  runtime_policy!: string;

  @IsOptional()
  @IsString()
  tpm_policy?: string | null;

  /** ironlime's: the agents enrolled with it (absent from a Keylime verifier). */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  agents_using?: string[];
}

export class StoredMbPolicyResults {
  @IsString()
  name!: string;

  @IsString()
  mb_policy!: string;

  /** ironlime's: the agents enrolled with it (absent from a Keylime verifier). */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  agents_using?: string[];
}
