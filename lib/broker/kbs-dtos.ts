import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsNotEmptyObject,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId } from '../http/validators.js';
import { EVIDENCE_LIMITS } from './tpm-evidence.js';

/**
 * Request shapes of the KBS routes (kbs-types `Request`, `Attestation`, kebab-case as on the wire) and
 * of the broker's admin routes. They check form only; the evidence is judged by `tpm-evidence.ts`.
 */

/** `POST /kbs/v0/auth`. */
export class KbsRequestBody {
  @IsString()
  @MaxLength(32)
  version!: string;

  @IsString()
  @MaxLength(32)
  tee!: string;

  /** Client hints (`supported-hash-algorithms`); read, never trusted. */
  @IsOptional()
  @IsObject()
  'extra-params'?: Record<string, unknown>;
}

export class RuntimeDataDto {
  @IsBase64String({ maxLength: 128 })
  nonce!: string;

  /** A JWK; checked by `parseTeePublicKey`. */
  @IsObject()
  @IsNotEmptyObject()
  'tee-pubkey'!: Record<string, unknown>;
}

export class TpmEvidenceDto {
  @IsKeylimeAgentId()
  agent_id!: string;

  @IsString()
  @MaxLength(EVIDENCE_LIMITS.quote)
  @Matches(/^r[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, { message: 'must be a Keylime quote string r<attest>:<sig>:<pcrs>' })
  quote!: string;

  @IsIn(['sha1', 'sha256', 'sha384', 'sha512'])
  hash_alg!: string;

  @IsOptional()
  @IsString()
  @MaxLength(EVIDENCE_LIMITS.imaList)
  ima_measurement_list?: string;

  @IsOptional()
  @IsBase64String({ maxLength: EVIDENCE_LIMITS.mbLog })
  mb_measurement_list?: string;
}

export class TeeEvidenceDto {
  @IsDefined()
  @ValidateNested()
  @Type(() => TpmEvidenceDto)
  primary_evidence!: TpmEvidenceDto;

  /** JSON text of additional (device) evidence; this broker appraises none and ignores it. */
  @IsOptional()
  @IsString()
  @MaxLength(64 * 1024)
  additional_evidence?: string;
}

export class InitDataDto {
  @IsIn(['json', 'toml'])
  format!: string;

  @IsString()
  @MaxLength(64 * 1024)
  body!: string;
}

/** `POST /kbs/v0/attest`. */
export class KbsAttestationBody {
  @IsOptional()
  @ValidateNested()
  @Type(() => InitDataDto)
  'init-data'?: InitDataDto;

  @IsDefined()
  @ValidateNested()
  @Type(() => RuntimeDataDto)
  'runtime-data'!: RuntimeDataDto;

  @IsDefined()
  @ValidateNested()
  @Type(() => TeeEvidenceDto)
  'tee-evidence'!: TeeEvidenceDto;
}

const PART = /^[A-Za-z0-9._-]{1,128}$/;

export class ResourcePathParams {
  @Matches(PART)
  repository!: string;

  @Matches(PART)
  type!: string;

  @Matches(PART)
  tag!: string;
}

export class AgentIdParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

/** Who may read a resource. Empty lists and no flag: nobody. */
export class ResourcePolicyDto {
  @IsArray()
  @IsString({ each: true })
  @MaxLength(80, { each: true })
  agents: string[] = [];

  @IsArray()
  @IsString({ each: true })
  @MaxLength(80, { each: true })
  groups: string[] = [];

  /** Also release against a passport token from a trusted issuer (default true). */
  @IsOptional()
  @IsBoolean()
  allow_tokens?: boolean;

  /** Also require good standing in the continuous verifier at every request (default false). */
  @IsOptional()
  @IsBoolean()
  verifier_standing?: boolean;
}

/** `PUT /kbs/v0/admin/resources/<repository>/<type>/<tag>`. */
export class PutResourceBody {
  /** The secret, base64. */
  @IsBase64String({ maxLength: 1024 * 1024 })
  data!: string;

  @IsDefined()
  @ValidateNested()
  @Type(() => ResourcePolicyDto)
  policy!: ResourcePolicyDto;
}

/** `PUT /kbs/v0/admin/nodes/<agent_id>`. */
export class PutNodeBody {
  @IsOptional()
  @IsBase64String({ maxLength: 4096 })
  ak_tpm?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64 * 1024)
  tpm_policy?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64 * 1024 * 1024)
  runtime_policy?: string;

  @IsOptional()
  @IsString()
  @MaxLength(16 * 1024 * 1024)
  mb_refstate?: string;

  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  @Matches(/^[A-Za-z0-9._-]{1,80}$/, { each: true })
  groups?: string[];
}

/** `POST /kbs/v0/admin/revocations/<agent_id>`. */
export class RevokeBody {
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  reason?: string;
}
