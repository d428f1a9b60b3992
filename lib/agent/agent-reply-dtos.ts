import { IsArray, IsInt, IsOptional, IsString, Matches, Min } from 'class-validator';
import { IsBase64String } from '../http/validators.js';

/**
 * Shapes of the agent's `results` as the agent client checks them (spec §2). Extra fields a newer
 * agent adds are dropped; missing or mistyped ones are a `BadRemoteReplyError`.
 */

export class AgentVersionResults {
  @IsString()
  supported_version!: string;

  /** Absent from older agents. */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  supported_versions?: string[];
}

export class AgentInfoResults {
  @IsString()
  agent_uuid!: string;

  @IsString()
  tpm_hash_alg!: string;

  @IsString()
  tpm_enc_alg!: string;

  @IsString()
  tpm_sign_alg!: string;

  /** A number from the Rust agent; the docs show a string. */
  @IsOptional()
  ak_handle?: number | string;
}

export class PubkeyResults {
  @IsString()
  pubkey!: string;
}

/** `quotes/identity` and `quotes/integrity`. */
export class QuoteResults {
  @IsString()
  quote!: string;

  @IsString()
  hash_alg!: string;

  @IsString()
  enc_alg!: string;

  @IsString()
  sign_alg!: string;

  @IsOptional()
  @IsString()
  pubkey?: string;

  @IsOptional()
  @IsString()
  ima_measurement_list?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  ima_measurement_list_entry?: number;

  @IsOptional()
  @IsBase64String({ allowEmpty: true, maxLength: 64 * 1024 * 1024 })
  mb_measurement_list?: string;
}

export class VerifyKeyResults {
  @Matches(/^[0-9a-fA-F]{96}$/, { message: 'must be 96 hex digits (HMAC-SHA384)' })
  hmac!: string;
}
