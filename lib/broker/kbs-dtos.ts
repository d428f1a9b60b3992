import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsDefined,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId } from '../http/validators.js';

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

/**
 * `POST /kbs/v0/attest` (kbs-types `Attestation`): the top level only. The members' own form is checked
 * by `checkAttestation` (kbs-attestation-check.ts), written out for this hot route.
 */
export class KbsAttestationBody {
  @IsOptional()
  @IsObject()
  'init-data'?: Record<string, unknown>;

  @IsDefined()
  @IsObject()
  'runtime-data'!: Record<string, unknown>;

  @IsDefined()
  @IsObject()
  'tee-evidence'!: Record<string, unknown>;
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
