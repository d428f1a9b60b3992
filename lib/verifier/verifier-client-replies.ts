import { IsArray, IsIn, IsInt, IsOptional, IsString, Max, Min } from 'class-validator';

/**
 * Shapes of the verifier's `results` as its client (`VerifierClient`) checks them (spec §4.2). Extra fields a newer
 * verifier adds are dropped; missing or mistyped ones are a `BadRemoteReplyError`.
 */
export class VerifierAgentStatus {
  /**
   * Absent or null from a Keylime verifier in push mode (spec §6.1: a push record has no state; its
   * verdict is `attestation_status`).
   */
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10)
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

  @IsOptional()
  @IsString()
  meta_data?: string;

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
  @IsInt()
  severity_level?: number | null;

  @IsOptional()
  @IsString()
  last_event_id?: string | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  attestation_count?: number;

  @IsOptional()
  @IsInt()
  last_received_quote?: number;

  @IsOptional()
  @IsInt()
  last_successful_attestation?: number;

  /** PASS / FAIL / PENDING (API ≥ 2.5). */
  @IsOptional()
  @IsString()
  attestation_status?: string;

  @IsOptional()
  @IsString()
  attestation_period?: string;
}

/** `GET /agents`: Keylime's verifier may nest ids in one-element lists; both forms are accepted. */
export class VerifierAgentList {
  @IsArray()
  uuids!: (string | string[])[];
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
