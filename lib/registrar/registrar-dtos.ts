import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString, Matches, MaxLength, MinLength, ValidateBy, ValidateIf } from 'class-validator';
import { IDENTITY_MODES, type IdentityMode } from '../identity/trust-level.js';
import { IsBase64String, IsKeylimeAgentId, IsPem, OptionalNotNull } from '../http/validators.js';
import { IsHostAddress } from '../http/host-address.js';

/**
 * Request shapes of the registrar routes (Keylime `keylime/web/registrar/agents_controller.py`,
 * spec §1.2 and §1.4). They check form only — base64 alphabet, lengths, id characters; the TPM
 * structures inside are parsed and judged by `registration-check.ts`.
 */

/** A TPM2B_PUBLIC is at most ~1.3 KB; its base64 stays well under this. */
const MAX_TPM_B64 = 4096;
/** A certificate or a PEM chain of a few certificates. */
const MAX_CERT_TEXT = 64 * 1024;

export class AgentIdParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

/** True when the body registers a TPM (the Rust agent never sends `identity_mode`: a TPM). */
export function registersTpm(body: { identity_mode?: IdentityMode | undefined }): boolean {
  return body.identity_mode === undefined || body.identity_mode === 'tpm' || body.identity_mode === 'emulated-tpm';
}

/**
 * `POST /v2.x/agents/{agent_id}`: what the Rust keylime-agent sends (`registrar_client.rs`), plus
 * ironlime's identity fields (docs/identity.md), which a Keylime agent never sends.
 */
export class RegisterAgentBody {
  /**
   * `tpm` when absent. Without a TPM (`id-secret`, `id-only`) `ek_tpm` and `aik_tpm` are not sent. The
   * identity fields may be absent but not null: null passed as "absent" here while `registersTpm` read
   * it as "no TPM", which stored a `tpm` record without EK or AK past every TPM check.
   */
  @OptionalNotNull()
  @IsIn(IDENTITY_MODES, { message: `must be one of ${IDENTITY_MODES.join(', ')}` })
  identity_mode?: IdentityMode;

  /** `sys-uuid:<uuid>` or `mac:<mac>`; required without a TPM, optional with one. */
  @OptionalNotNull()
  @IsString()
  @Matches(/^(sys-uuid|mac):[0-9A-Fa-f:-]{17,36}$/, { message: 'must be sys-uuid:<uuid> or mac:<address>' })
  host_id?: string;

  /** `id-secret`, first registration: hex HMAC-SHA256 the host derived from its secret (lib/identity/host-secret-proof.ts). */
  @OptionalNotNull()
  @Matches(/^[0-9a-f]{64}$/, { message: 'must be 64 lowercase hex digits' })
  host_proof_key?: string;

  /** base64 TPM2B_PUBLIC of the EK. Keylime lets it be absent, but then it cannot issue a challenge. */
  @ValidateIf(registersTpm)
  @IsBase64String({ maxLength: MAX_TPM_B64 })
  ek_tpm!: string;

  /** EK certificate: PEM (a chain is allowed, intermediates first), base64 DER, or raw DER. */
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(MAX_CERT_TEXT)
  ekcert?: string | null;

  /** base64 TPM2B_PUBLIC of the AK. */
  @ValidateIf(registersTpm)
  @IsBase64String({ maxLength: MAX_TPM_B64 })
  aik_tpm!: string;

  /** Address the verifier and tenant contact the agent at: an IP address or a DNS name. */
  @IsOptional()
  @IsString()
  @IsHostAddress()
  ip?: string | null;

  /** The agent's HTTPS port. Keylime's docs show it as a string, so digit strings are accepted too. */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value,
  )
  @ValidateBy({
    name: 'isPort',
    validator: {
      validate: (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535,
      defaultMessage: () => 'must be an integer port from 1 to 65535',
    },
  })
  port?: number | null;

  /** PEM of the agent's self-signed HTTPS certificate, or the literal "disabled". */
  @IsOptional()
  @ValidateIf((body: RegisterAgentBody) => body.mtls_cert !== 'disabled')
  @IsPem({ label: 'CERTIFICATE', maxLength: MAX_CERT_TEXT }, { message: 'must be a PEM certificate or "disabled"' })
  mtls_cert?: string | null;

  // IAK/IDevID fields (spec §1.2): accepted so a Rust agent with IAK enabled can register, but neither
  // checked nor stored — the EK is this registrar's root of identity (see docs/registrar.md).
  @IsOptional()
  @IsBase64String({ maxLength: MAX_TPM_B64 })
  iak_tpm?: string;

  @IsOptional()
  @IsBase64String({ maxLength: MAX_TPM_B64 })
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
  @IsBase64String({ maxLength: MAX_TPM_B64 })
  iak_attest?: string;

  @IsOptional()
  @IsBase64String({ maxLength: MAX_TPM_B64 })
  iak_sign?: string;
}

/** `PUT /v2.x/agents/{agent_id}[/activate]`: hex(HMAC-SHA384(key, agent_id)), 96 hex digits (spec §1.4). */
export class ActivateAgentBody {
  @Matches(/^[0-9a-fA-F]{96}$/, { message: 'must be 96 hex digits (an HMAC-SHA384)' })
  auth_tag!: string;
}

/** `PUT /v2.x/agents/{agent_id}/host-proof`: an `id-secret` host's answer to its registration nonce. */
export class HostProofBody {
  @Matches(/^[0-9a-f]{64}$/, { message: 'must be 64 lowercase hex digits (an HMAC-SHA256)' })
  host_proof!: string;
}

/** `PUT /v2.x/agents/{agent_id}/identity-mode` (admin): the mode the agent's next registration may switch to. */
export class IdentityModeBody {
  @IsIn(IDENTITY_MODES, { message: `must be one of ${IDENTITY_MODES.join(', ')}` })
  identity_mode!: IdentityMode;
}
