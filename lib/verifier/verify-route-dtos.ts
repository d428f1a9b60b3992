import { Type } from 'class-transformer';
import { Equals, IsObject, IsOptional, IsString, Matches, MaxLength, ValidateNested } from 'class-validator';
import { IsBase64String, IsKeylimeAgentId, IsNonce } from '../http/validators.js';
import { MAX_POLICY_TEXT, MAX_SMALL_JSON, MAX_TPM_B64 } from './verifier-dtos.js';

/**
 * Request shapes of the verifier's stateless checks, `/verify/identity` and `/verify/evidence`
 * (spec §4.6, §4.7). Like `verifier-dtos.ts` they check form only; `evidence-body-fast-path.ts`
 * mirrors `EvidenceBody` and must change with it.
 */

/** `mb_log` of `POST /verify/evidence`: base64 of a UEFI event log. */
export const MAX_EVIDENCE_MB_LOG = 64 * 1024 * 1024;
/** `quote` of `POST /verify/evidence` and `GET /verify/identity`: Keylime's quote string `r<attest>:<signature>:<pcrs>`. */
export const EVIDENCE_QUOTE = /^r[A-Za-z0-9+/=:]{1,65536}$/;
/** `nonce` of `POST /verify/evidence`. */
export const EVIDENCE_NONCE = /^[A-Za-z0-9+/=_-]{1,128}$/;
/** `hash_alg` of `POST /verify/evidence`: a name; the engine refuses one it does not know. */
export const MAX_EVIDENCE_HASH_ALG = 16;

/** `GET /v2.x/verify/identity` (spec §4.6). */
export class IdentityQuery {
  @IsKeylimeAgentId()
  agent_uuid!: string;

  @IsString()
  @Matches(EVIDENCE_QUOTE, { message: 'must be a Keylime quote string r<attest>:<signature>:<pcrs>' })
  quote!: string;

  @IsNonce()
  nonce!: string;

  @IsString()
  @MaxLength(MAX_EVIDENCE_HASH_ALG)
  hash_alg!: string;
}

/** `data` of `POST /v2.x/verify/evidence` with `type: "tpm"` (spec §4.7; Keylime 2.5). */
export class TpmEvidenceData {
  @IsString()
  @Matches(EVIDENCE_QUOTE, { message: 'must be a Keylime quote string r<attest>:<signature>:<pcrs>' })
  quote!: string;

  @IsString()
  @Matches(EVIDENCE_NONCE, { message: 'must be 1 to 128 letters, digits or base64 characters' })
  nonce!: string;

  @IsString()
  @MaxLength(MAX_EVIDENCE_HASH_ALG)
  hash_alg!: string;

  @IsBase64String({ maxLength: MAX_TPM_B64 })
  tpm_ak!: string;

  @IsOptional()
  @IsBase64String({ allowEmpty: true, maxLength: MAX_TPM_B64 })
  tpm_ek?: string;

  /** JSON text of a `tpm_policy`. */
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SMALL_JSON)
  tpm_policy?: string | null;

  /** JSON text of a runtime policy. */
  @IsOptional()
  @IsString()
  @MaxLength(MAX_POLICY_TEXT)
  runtime_policy?: string | null;

  /** JSON text of a refstate. */
  @IsOptional()
  @IsString()
  @MaxLength(MAX_POLICY_TEXT)
  mb_policy?: string | null;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_POLICY_TEXT)
  ima_measurement_list?: string | null;

  @IsOptional()
  @IsBase64String({ allowEmpty: true, maxLength: MAX_EVIDENCE_MB_LOG })
  mb_log?: string | null;
}

export class EvidenceBody {
  @Equals('tpm', { message: 'must be "tpm" (TEE evidence is not supported)' })
  type!: string;

  @IsObject()
  @ValidateNested()
  @Type(() => TpmEvidenceData)
  data!: TpmEvidenceData;
}
