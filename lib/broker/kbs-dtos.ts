import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsDefined,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId } from '../http/validators.js';
import { RESOURCE_PART } from './kbs-wire.js';

/**
 * Request shapes of the broker's admin routes. The KBS routes' own (kbs-types `Request`, `Attestation`,
 * the resource path) are checked by `kbs-request-checks.ts`.
 */

/** An admin route's resource path; the KBS `GET /resource/…` route checks the same with `checkResourcePath`. */
export class ResourcePathParams {
  @Matches(RESOURCE_PART)
  repository!: string;

  @Matches(RESOURCE_PART)
  type!: string;

  @Matches(RESOURCE_PART)
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
