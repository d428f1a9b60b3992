import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
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
  ValidateBy,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId } from '../http/validators.js';
import { isJsonOfAtMost } from './json-size.js';
import { RESOURCE_PART } from './kbs-wire.js';
import { TRUST_CLAIMS, type TrustClaim } from './resource-policy.js';
import { EVIDENCE_LIMITS } from './tpm-evidence.js';

/**
 * Request shapes of the broker's routes: the KBS ones (kbs-types `Request`, `Attestation`, kebab-case as
 * on the wire, and the resource path) and the admin ones. These classes are the definition of what each
 * route accepts and produce every refusal; the hot KBS routes put `kbs-body-fast-path.ts` in front,
 * which accepts only what these accept. Form only: the evidence is judged by `appraiseTpmEvidence`.
 */

/** Bounds and alphabets the DTOs and their fast path share. */
export const KBS_FORM = {
  /** `version` and `tee` of a Request. */
  short: 32,
  nonce: 128,
  /** `init-data.body`, `additional_evidence`; the JSON text of `extra-params`. */
  text: 64 * 1024,
  hashAlgs: ['sha1', 'sha256', 'sha384', 'sha512'],
  initDataFormats: ['json', 'toml'],
  /** A Keylime quote string `r<attest>:<sig>:<pcrs>` (Keylime spec §3.1). */
  quote: /^r[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/,
} as const;

function IsJsonOfAtMost(max: number): PropertyDecorator {
  return ValidateBy({
    name: 'isJsonOfAtMost',
    validator: { validate: (value: unknown) => isJsonOfAtMost(value, max), defaultMessage: () => `must be JSON of at most ${max} characters` },
  });
}

/**
 * A required string of at most `max` characters; a missing one is refused as "is required" alone (with
 * `@IsString() @MaxLength()` it was told only its length and type, which reads as a wrong value).
 */
function IsRequiredTextOfAtMost(max: number): PropertyDecorator {
  return ValidateBy({
    name: 'isRequiredTextOfAtMost',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && value.length <= max,
      defaultMessage: (args) => (args?.value === undefined ? 'is required' : `must be a string of at most ${max} characters`),
    },
  });
}

/** `POST /kbs/v0/auth`. */
export class KbsRequestBody {
  @IsRequiredTextOfAtMost(KBS_FORM.short)
  version!: string;

  @IsRequiredTextOfAtMost(KBS_FORM.short)
  tee!: string;

  /**
   * Client hints: any JSON value, as kbs-types' `serde_json::Value` (the protocol doc sends `""` for
   * runtime TEEs; guest-components sends `{"supported-hash-algorithms": [...]}`). Not read: the broker
   * selects SHA-256, which every kbs-types client supports.
   */
  @IsOptional()
  @IsJsonOfAtMost(KBS_FORM.text)
  'extra-params'?: unknown;
}

export class RuntimeDataDto {
  @IsBase64String({ maxLength: KBS_FORM.nonce })
  nonce!: string;

  /** A JWK; checked by `parseTeePublicKey`. Not `nullable`: some member must not be null. */
  @IsObject()
  @IsNotEmptyObject({ nullable: false })
  'tee-pubkey'!: Record<string, unknown>;
}

export class TpmEvidenceDto {
  @IsKeylimeAgentId()
  agent_id!: string;

  @IsString()
  @MaxLength(EVIDENCE_LIMITS.quote)
  @Matches(KBS_FORM.quote, { message: 'must be a Keylime quote string r<attest>:<sig>:<pcrs>' })
  quote!: string;

  @IsIn(KBS_FORM.hashAlgs)
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
  @IsObject()
  @ValidateNested()
  @Type(() => TpmEvidenceDto)
  primary_evidence!: TpmEvidenceDto;

  /**
   * JSON text of additional (device) evidence, bound into the report data (`reportDataOf`); absent or
   * null counts as `""`. kbs-types requires it. This broker appraises no device: a non-empty one is
   * refused (`BrokerService.attest`).
   */
  @IsOptional()
  @IsString()
  @MaxLength(KBS_FORM.text)
  additional_evidence?: string;
}

export class InitDataDto {
  @IsIn(KBS_FORM.initDataFormats)
  format!: string;

  @IsString()
  @MaxLength(KBS_FORM.text)
  body!: string;
}

/**
 * `POST /kbs/v0/attest`. Each nested member is also `IsObject`: `ValidateNested` alone would take an
 * array of valid objects.
 */
export class KbsAttestationBody {
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => InitDataDto)
  'init-data'?: InitDataDto;

  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => RuntimeDataDto)
  'runtime-data'!: RuntimeDataDto;

  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => TeeEvidenceDto)
  'tee-evidence'!: TeeEvidenceDto;
}

/** The resource path of `GET /kbs/v0/resource/…` and of the admin resource routes (the client's rule, `RESOURCE_PART`). */
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

/** A list of `TRUST_CLAIMS` names; the refusal names every unknown one. */
function AreTrustClaims(): PropertyDecorator {
  const unknown = (value: unknown): unknown[] =>
    Array.isArray(value) ? value.filter((name) => !(TRUST_CLAIMS as readonly unknown[]).includes(name)) : [value];
  return ValidateBy({
    name: 'areTrustClaims',
    validator: {
      validate: (value: unknown) => unknown(value).length === 0,
      defaultMessage: (args) =>
        `${args?.property ?? 'required_claims'} must list trustworthiness claims (${TRUST_CLAIMS.join(', ')}); unknown: ${unknown(args?.value)
          .map((name) => String(JSON.stringify(name)).slice(0, 40))
          .join(', ')}`,
    },
  });
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

  /** Trustworthiness claims every appraisal of the requester must affirm (AR4SI 2..31); default none. Not null: absent means none. */
  @ValidateIf((_policy, value) => value !== undefined)
  @IsArray()
  @ArrayMaxSize(TRUST_CLAIMS.length)
  @AreTrustClaims()
  required_claims?: TrustClaim[];
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

/**
 * `DELETE /kbs/v0/admin/revocations/<agent_id>?version=`: reinstate only the revocation of that version
 * (`GET` of the same path gives it), so one recorded since is never ended.
 */
export class ReinstateQuery {
  @IsOptional()
  @Matches(/^[0-9]{1,10}$/, { message: 'version must be the decimal version a GET of this revocation answered' })
  version?: string;
}
