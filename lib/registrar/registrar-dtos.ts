import { Transform } from 'class-transformer';
import { IsBase64, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';

/**
 * Request shapes of the registrar routes (Keylime `keylime/web/registrar/agents_controller.py`,
 * spec §1.2 and §1.4). They check form only — base64 alphabet, lengths, id characters; the TPM
 * structures inside are parsed and judged by `registration-service.ts`.
 */

/** Keylime's agent id rule `[\w.-]+`, capped at the 80 characters of its `agent_id` column. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9_.-]{1,80}$/;

/** Upper bound for one base64 TPM structure (a TPM2B_PUBLIC is at most ~1.2 KB in base64). */
const MAX_TPM_B64 = 4096;
/** Upper bound for a certificate or a PEM chain. */
const MAX_CERT_TEXT = 65536;

const BASE64_MESSAGE = 'must be a base64 string';

export class AgentIdParams {
  @IsString()
  @Matches(AGENT_ID_PATTERN, { message: 'must be 1-80 characters from A-Z a-z 0-9 _ . -' })
  agent_id!: string;
}

/** `POST /v2.x/agents/{agent_id}`: what the Rust keylime-agent sends (`registrar_client.rs`). */
export class RegisterAgentBody {
  /** base64 TPM2B_PUBLIC of the EK. Keylime lets it be absent, but then it cannot issue a challenge. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  ek_tpm!: string;

  /** EK certificate: PEM (a chain is allowed, intermediates first), base64 DER, or raw DER. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_CERT_TEXT)
  ekcert?: string;

  /** base64 TPM2B_PUBLIC of the AK. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  aik_tpm!: string;

  /** Address the verifier and tenant contact the agent at: an IP address or a DNS name. */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9.:_-]{1,253}$/, { message: 'must be an IP address or a host name' })
  ip?: string;

  /** The agent's HTTPS port. Keylime's docs show it as a string, so digit strings are accepted too. */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value,
  )
  @IsInt({ message: 'must be an integer port number' })
  @Min(1)
  @Max(65535)
  port?: number;

  /** PEM of the agent's self-signed HTTPS certificate, or the literal "disabled". */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_CERT_TEXT)
  mtls_cert?: string;

  // IAK/IDevID fields (spec §1.2): accepted so a Rust agent with IAK enabled can register, but neither
  // checked nor stored — the EK is this registrar's root of identity (see docs/registrar.md).
  @IsOptional()
  @IsString()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  iak_tpm?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  idevid_tpm?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_CERT_TEXT)
  iak_cert?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_CERT_TEXT)
  idevid_cert?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  iak_attest?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_TPM_B64)
  @IsBase64(undefined, { message: BASE64_MESSAGE })
  iak_sign?: string;
}

/** `PUT /v2.x/agents/{agent_id}[/activate]`: hex(HMAC-SHA384(key, agent_id)), 96 hex digits (spec §1.4). */
export class ActivateAgentBody {
  @IsString()
  @Matches(/^[0-9a-fA-F]{96}$/, { message: 'must be 96 hexadecimal digits (an HMAC-SHA384)' })
  auth_tag!: string;
}
