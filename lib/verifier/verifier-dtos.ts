import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateBy,
  ValidateIf,
} from 'class-validator';
import { IsBase64String, IsKeylimeAgentId, IsPem, NullAsAbsent } from '../http/validators.js';
import { IsHostAddress } from '../http/host-address.js';

/**
 * Request shapes of the verifier routes (spec §4; Keylime `cloud_verifier_tornado.py`). They check
 * form only — types, lengths, alphabets; the verifier service parses and judges the content (policy
 * JSON, refstate, AK) and names the field at fault. The `/verify` checks' shapes are in `verify-route-dtos.ts`.
 */

export const MAX_TPM_B64 = 4096;
const MAX_CERT_TEXT = 64 * 1024;
/** A base64 runtime policy can be tens of MiB (Keylime allows 100 MiB uploads); the body limit bounds it too. */
export const MAX_POLICY_TEXT = 256 * 1024 * 1024;
export const MAX_SMALL_JSON = 1024 * 1024;

/** Ports arrive as numbers or, from some tenants, digit strings. */
function toPort({ value }: { value: unknown }): unknown {
  return typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
}

const IsPort = (): PropertyDecorator =>
  ValidateBy({
    name: 'isPort',
    validator: {
      validate: (value: unknown): boolean => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535,
      defaultMessage: () => 'must be an integer port from 1 to 65535',
    },
  });

export class AgentIdParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

export class PolicyNameParams {
  @Matches(/^[A-Za-z0-9_.:@+-]{1,255}$/, { message: 'must be 1 to 255 letters, digits or "_.:@+-"' })
  name!: string;
}

/** `POST /v2.x/agents/{agent_id}` (spec §4.1; the Keylime tenant's `do_cvadd`). */
export class AddAgentBody {
  /** base64 of the 32-byte V key, or null: no payload. */
  @IsOptional()
  @IsBase64String({ maxLength: 64 })
  v?: string | null;

  /**
   * `push`: the agent attests itself over API 3.0 (spec §10) — it has no address, port or mTLS
   * certificate; `pull` (default): the verifier polls it. An ironlime field: Keylime chooses the mode
   * per verifier (`[verifier] mode`), ironlime per agent, so one verifier holds both.
   */
  @NullAsAbsent()
  @IsOptional()
  @IsIn(['pull', 'push'])
  attestation_mode?: 'pull' | 'push';

  /** Required in pull mode; a push agent's (if sent) is ignored and not stored. */
  @ValidateIf((body: AddAgentBody) => body.attestation_mode !== 'push' || body.cloudagent_ip !== undefined)
  @IsString()
  @IsHostAddress()
  cloudagent_ip?: string;

  @ValidateIf((body: AddAgentBody) => body.attestation_mode !== 'push' || body.cloudagent_port !== undefined)
  @Transform(toPort)
  @IsPort()
  cloudagent_port?: number;

  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @IsHostAddress()
  verifier_ip?: string;

  @IsOptional()
  @Transform(toPort)
  @IsPort()
  verifier_port?: number;

  /** JSON text `{"<pcr>": ["<hex>", …], "mask": "0x…"}`. */
  @IsString()
  @MaxLength(MAX_SMALL_JSON)
  tpm_policy!: string;

  /** base64 of the runtime-policy JSON, a DSSE envelope or a flat allowlist; "" = none. */
  @IsBase64String({ allowEmpty: true, maxLength: MAX_POLICY_TEXT })
  runtime_policy!: string;

  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @MaxLength(255)
  runtime_policy_name?: string;

  /** base64 PEM of the key a DSSE-signed policy must verify with. */
  @NullAsAbsent()
  @IsOptional()
  @IsBase64String({ allowEmpty: true, maxLength: MAX_CERT_TEXT })
  runtime_policy_key?: string;

  /** Refstate JSON text, or null / "" for none. */
  @IsOptional()
  @IsString()
  @MaxLength(MAX_POLICY_TEXT)
  mb_policy?: string | null;

  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @MaxLength(255)
  mb_policy_name?: string;

  /** JSON text of an IMA keyring, or "". */
  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SMALL_JSON)
  ima_sign_verification_keys?: string;

  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @MaxLength(MAX_SMALL_JSON)
  metadata?: string;

  @NullAsAbsent()
  @IsOptional()
  @IsString()
  @MaxLength(MAX_CERT_TEXT)
  revocation_key?: string;

  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(32, { each: true })
  accept_tpm_hash_algs!: string[];

  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(32, { each: true })
  accept_tpm_encryption_algs!: string[];

  @IsArray()
  @ArrayMaxSize(32)
  @IsString({ each: true })
  @MaxLength(32, { each: true })
  accept_tpm_signing_algs!: string[];

  @IsBase64String({ maxLength: MAX_TPM_B64 })
  ak_tpm!: string;

  @NullAsAbsent()
  @IsOptional()
  @IsPem({ label: 'CERTIFICATE', maxLength: MAX_CERT_TEXT })
  mtls_cert?: string;

  @NullAsAbsent()
  @IsOptional()
  @Matches(/^[0-9]{1,2}\.[0-9]{1,2}$/, { message: 'must be an API version such as 2.6' })
  supported_version?: string;
}

/**
 * `GET /v2.x/agents[?verifier=<id>][&bulk]`. An empty `verifier=` means every agent, as in Keylime,
 * whose tenant always sends it (`keylime_tenant -c cvlist`: `GET /v2.x/agents/?verifier=`).
 */
export class ListAgentsQuery {
  @Transform(({ value }: { value: unknown }) => (value === '' ? undefined : value))
  @IsOptional()
  @Matches(/^[A-Za-z0-9_.-]{1,80}$/, { message: 'must be a verifier id' })
  verifier?: string;

  /** Present (any value, usually empty) = return every agent's status. */
  @IsOptional()
  @IsString()
  @MaxLength(16)
  bulk?: string;
}

/** `GET /v2.x/agents/{id}/history?limit=` (an ironlime extension). */
export class HistoryQuery {
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  limit?: number;

  /** Rows older than this history id only (the `next_before` of the previous page). */
  @IsOptional()
  @IsInt()
  @Min(1)
  before?: number;
}

/** `POST/PUT /v2.x/allowlists/{name}` (spec §4.4). */
export class RuntimePolicyBody {
  @IsBase64String({ maxLength: MAX_POLICY_TEXT })
  runtime_policy!: string;

  @NullAsAbsent()
  @IsOptional()
  @IsBase64String({ allowEmpty: true, maxLength: MAX_CERT_TEXT })
  runtime_policy_key?: string;

  @IsOptional()
  @IsString()
  @MaxLength(MAX_SMALL_JSON)
  tpm_policy?: string | null;
}

/** `POST/PUT /v2.x/mbpolicies/{name}` (spec §4.5). */
export class MbPolicyBody {
  @IsString()
  @MaxLength(MAX_POLICY_TEXT)
  mb_policy!: string;
}
