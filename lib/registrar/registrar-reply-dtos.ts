import { IsArray, IsIn, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';
import { IDENTITY_MODES, TRUST_LEVELS, type IdentityMode, type TrustLevel } from '../identity/trust-level.js';
import { IsBase64String, IsKeylimeAgentId, OptionalNotNull } from '../http/validators.js';

/**
 * Shapes of the registrar's `results`, as the registrar client checks them (spec §1.1–1.5). Extra
 * fields a newer registrar adds are dropped, missing or mistyped ones are a `BadRemoteReplyError`.
 */

export class RegistrarVersionResults {
  @IsString()
  current_version!: string;

  @IsArray()
  @IsString({ each: true })
  supported_versions!: string[];
}

export class RegisterReplyResults {
  @IsBase64String({ maxLength: 16384 })
  blob!: string;
}

export class AgentListReplyResults {
  @IsArray()
  @IsString({ each: true })
  uuids!: string[];
}

/** `results` of an `id-secret` or `id-only` registration: the nonce to prove the host secret for (id-secret). */
export class IdentityRegisterReplyResults {
  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/)
  nonce?: string;
}

/** Where an agent is reached, as both agent views of the registrar give it. */
class AgentContactReplyFields {
  @IsOptional()
  @IsString()
  mtls_cert!: string | null;

  @IsOptional()
  @IsString()
  ip!: string | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  port!: number | null;
}

/** `results` of `GET /agents/{id}/identity` (ironlime). */
export class AgentIdentityReplyResults extends AgentContactReplyFields {
  @IsKeylimeAgentId()
  agent_id!: string;

  @IsIn(IDENTITY_MODES)
  identity_mode!: IdentityMode;

  @IsIn(TRUST_LEVELS)
  trust_level!: TrustLevel;

  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/)
  host_id_hash!: string | null;

  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/)
  host_proof_key!: string | null;

  @IsOptional()
  @IsIn(IDENTITY_MODES)
  mode_change_to!: IdentityMode | null;

  @IsOptional()
  @IsString()
  flagged_reason!: string | null;
}

export class AgentShowReplyResults extends AgentContactReplyFields {
  @IsKeylimeAgentId()
  agent_id!: string;

  /** null for an agent registered without a TPM (ironlime's `id-secret`, `id-only`). */
  @IsOptional()
  @IsBase64String()
  ek_tpm!: string | null;

  @IsOptional()
  @IsBase64String()
  ekcert!: string | null;

  @IsOptional()
  @IsBase64String()
  aik_tpm!: string | null;

  @IsInt()
  @Min(0)
  regcount!: number;

  /**
   * ironlime's registrar only; absent from Keylime's. Never null: absent, the driver derives the level
   * from the EK check, while a null one was taken as a level (not one with evidence: a TPM node's
   * enrolment for liveness checks was tried).
   */
  @OptionalNotNull()
  @IsIn(IDENTITY_MODES)
  identity_mode?: IdentityMode;

  @OptionalNotNull()
  @IsIn(TRUST_LEVELS)
  trust_level?: TrustLevel;
}
