import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  Equals,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId, NullAsAbsent } from '../../http/validators.js';
import { isBootTime } from './boot-time.js';

/**
 * The JSON:API bodies of the push routes (keylime-protocol §10; the Rust push agent's requests).
 * Every field is bounded; unknown fields are refused like everywhere else (`validateDto`), except an
 * object `meta` on capabilities and on evidence data, which is accepted and ignored.
 */

export const SHORT = 64;
/** TPMS_ATTEST and TPMT_SIGNATURE in base64: a few hundred bytes; 16 KiB is far above any TPM's. */
export const MAX_TPM_B64 = 16 * 1024;
/** A UEFI event log (≈ 100 KiB) and an IMA list of ~100,000 entries (≈ 15 MiB) as text. */
export const MAX_LOG_TEXT = 24 * 1024 * 1024;

/** `available_subjects`: `{"<bank>": [pcr, …]}` — a map, as Keylime's engine requires (spec §10.3). */
function IsSubjectMap(): PropertyDecorator {
  return ValidateBy({
    name: 'isSubjectMap',
    validator: {
      validate: (value: unknown) =>
        value !== null &&
        typeof value === 'object' &&
        !Array.isArray(value) &&
        Object.keys(value).length <= 16 &&
        Object.entries(value as Record<string, unknown>).every(
          ([bank, pcrs]) =>
            bank.length <= 16 && Array.isArray(pcrs) && pcrs.length <= 24 && pcrs.every((p) => Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 23),
        ),
      defaultMessage: () => 'must map each PCR bank to a list of PCR numbers 0–23',
    },
  });
}

function shortList(): PropertyDecorator[] {
  return [IsArray(), ArrayMaxSize(16), IsString({ each: true }), MaxLength(SHORT, { each: true })];
}

function apply(target: object, key: string, decorators: PropertyDecorator[]): void {
  for (const decorator of decorators) decorator(target, key);
}

export class CertificationKey {
  @IsOptional() @IsString() @MaxLength(SHORT) key_class?: string;
  @IsString() @MaxLength(SHORT) key_algorithm!: string;
  @IsOptional() @IsInt() @Min(0) @Max(65536) key_size?: number;
  @IsOptional() @IsString() @MaxLength(SHORT) server_identifier?: string;
  @IsOptional() @IsString() @MaxLength(256) local_identifier?: string;
  @IsOptional() allowable_signature_schemes?: string[];
  @IsOptional() allowable_hash_algorithms?: string[];
  @IsOptional() @IsBase64String({ maxLength: MAX_TPM_B64 }) public?: string;
}
apply(CertificationKey.prototype, 'allowable_signature_schemes', shortList());
apply(CertificationKey.prototype, 'allowable_hash_algorithms', shortList());

/** The capabilities of one evidence item; which fields apply depends on `evidence_type`. */
export class EvidenceCapabilities {
  @IsOptional() @IsString() @MaxLength(SHORT) component_version?: string;
  @IsOptional() signature_schemes?: string[];
  @IsOptional() hash_algorithms?: string[];
  @IsOptional() @IsSubjectMap() available_subjects?: Record<string, number[]>;
  @IsOptional() @IsArray() @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => CertificationKey) certification_keys?: CertificationKey[];
  @IsOptional() @IsString() @MaxLength(SHORT) evidence_version?: string;
  @IsOptional() @IsInt() @Min(0) @Max(100_000_000) entry_count?: number;
  @IsOptional() @IsBoolean() supports_partial_access?: boolean;
  @IsOptional() @IsBoolean() appendable?: boolean;
  @IsOptional() formats?: string[];
  /** Accepted and ignored, as Keylime ignores what it does not know. */
  @IsOptional() @IsObject() meta?: object;
}
apply(EvidenceCapabilities.prototype, 'signature_schemes', shortList());
apply(EvidenceCapabilities.prototype, 'hash_algorithms', shortList());
apply(EvidenceCapabilities.prototype, 'formats', shortList());

/** The evidence classes and types of §10 that the verifier takes (the DTOs' and the fast path's one list). */
export const EVIDENCE_CLASSES = ['certification', 'log'] as const;
export const EVIDENCE_TYPES = ['tpm_quote', 'uefi_log', 'ima_log'] as const;

export class EvidenceSupported {
  @IsIn([...EVIDENCE_CLASSES]) evidence_class!: string;
  @IsIn([...EVIDENCE_TYPES]) evidence_type!: (typeof EVIDENCE_TYPES)[number];
  @ValidateNested() @Type(() => EvidenceCapabilities) capabilities!: EvidenceCapabilities;
}

/** `system_info.boot_time`: an RFC 3339 date-time naming a real instant (`boot-time.ts`). */
function IsBootTime(): PropertyDecorator {
  return ValidateBy({
    name: 'isBootTime',
    validator: { validate: isBootTime, defaultMessage: () => 'must be an RFC 3339 date-time, e.g. 2026-12-05T10:00:00Z' },
  });
}

export class SystemInfo {
  @IsOptional() @IsBootTime() boot_time?: string;
}

export class CapabilitiesAttributes {
  @IsArray() @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => EvidenceSupported) evidence_supported!: EvidenceSupported[];
  @IsOptional() @ValidateNested() @Type(() => SystemInfo) system_info?: SystemInfo;
}

export class CapabilitiesData {
  @Equals('attestation') type!: string;
  @ValidateNested() @Type(() => CapabilitiesAttributes) attributes!: CapabilitiesAttributes;
}

/** `POST /v3.0/agents/{id}/attestations` (phase 1). */
export class CapabilitiesBody {
  @ValidateNested() @Type(() => CapabilitiesData) data!: CapabilitiesData;
}

/** Null is absent here: the decoder tells a missing quote part or log by `=== undefined`. */
export class CollectedData {
  @NullAsAbsent() @IsOptional() @IsBase64String({ maxLength: MAX_TPM_B64 }) message?: string;
  @NullAsAbsent() @IsOptional() @IsBase64String({ maxLength: MAX_TPM_B64 }) signature?: string;
  @NullAsAbsent() @IsOptional() @IsBase64String({ maxLength: MAX_TPM_B64 }) subject_data?: string;
  @NullAsAbsent() @IsOptional() @IsString() @MaxLength(MAX_LOG_TEXT) entries?: string;
  @NullAsAbsent() @IsOptional() @IsInt() @Min(0) @Max(100_000_000) entry_count?: number;
  /** Accepted and ignored (the Rust agent's `EvidenceData` may carry it). */
  @IsOptional() @IsObject() meta?: object;
}

export class EvidenceCollected {
  @IsIn([...EVIDENCE_CLASSES]) evidence_class!: string;
  @IsIn([...EVIDENCE_TYPES]) evidence_type!: (typeof EVIDENCE_TYPES)[number];
  @ValidateNested() @Type(() => CollectedData) data!: CollectedData;
}

export class EvidenceAttributes {
  @IsArray() @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => EvidenceCollected) evidence_collected!: EvidenceCollected[];
}

export class EvidenceData {
  @Equals('attestation') type!: string;
  @ValidateNested() @Type(() => EvidenceAttributes) attributes!: EvidenceAttributes;
}

/** `PATCH /v3.0/agents/{id}/attestations/{index|latest}` (phase 2). */
export class EvidenceBody {
  @ValidateNested() @Type(() => EvidenceData) data!: EvidenceData;
}

export class AuthenticationMethod {
  @IsString() @MaxLength(SHORT) authentication_class!: string;
  @IsString() @MaxLength(SHORT) authentication_type!: string;
}

export class SessionCreateAttributes {
  @IsKeylimeAgentId() agent_id!: string;
  @IsArray() @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => AuthenticationMethod) authentication_supported!: AuthenticationMethod[];
}

export class SessionCreateData {
  @Equals('session') type!: string;
  @ValidateNested() @Type(() => SessionCreateAttributes) attributes!: SessionCreateAttributes;
}

/** `POST /v3.0/sessions`. */
export class SessionCreateBody {
  @ValidateNested() @Type(() => SessionCreateData) data!: SessionCreateData;
}

export class ProofData {
  @IsBase64String({ maxLength: MAX_TPM_B64 }) message!: string;
  @IsBase64String({ maxLength: MAX_TPM_B64 }) signature!: string;
}

export class AuthenticationProvided extends AuthenticationMethod {
  @ValidateNested() @Type(() => ProofData) data!: ProofData;
}

export class SessionProofAttributes {
  @IsKeylimeAgentId() agent_id!: string;
  @IsArray() @ArrayMaxSize(8) @ValidateNested({ each: true }) @Type(() => AuthenticationProvided) authentication_provided!: AuthenticationProvided[];
}

export class SessionProofData {
  @Equals('session') type!: string;
  @IsOptional() @IsString() @MaxLength(SHORT) id?: string;
  @ValidateNested() @Type(() => SessionProofAttributes) attributes!: SessionProofAttributes;
}

/** `PATCH /v3.0/sessions/{id}`. */
export class SessionProofBody {
  @ValidateNested() @Type(() => SessionProofData) data!: SessionProofData;
}

export class SessionIdParams {
  @IsString() @MaxLength(SHORT) session_id!: string;
}

export class PushAgentParams {
  @IsKeylimeAgentId() agent_id!: string;
}

export class AttestationIndexParams extends PushAgentParams {
  /** A decimal index or `latest`. */
  @IsString() @MaxLength(12) index!: string;
}
