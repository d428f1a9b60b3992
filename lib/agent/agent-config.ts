import 'reflect-metadata';
import { IsArray, IsBoolean, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, IsUrl, Matches, Max, Min } from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';
import { validateServiceConfig } from '../config/service-config-sources.js';
import { IsKeylimeAgentId } from '../http/validators.js';
import { IDENTITY_MODES, type IdentityMode } from '../identity/trust-level.js';

/** PCR bank and AK hash the agent quotes with (Keylime `tpm_hash_alg`). */
export const AGENT_HASH_ALGS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type AgentHashAlg = (typeof AGENT_HASH_ALGS)[number];

/**
 * Which TPM the agent uses: `swtpm` (its own swtpm, manufactured and started in `<dataDir>/swtpm`),
 * `software` (the in-process software TPM: no root of trust, fleets and demos only), or a TSS2 TCTI
 * for tpm2-tools: `swtpm:host=H,port=P` (someone else's swtpm) or `device:/dev/tpmrm0` (a real TPM).
 */
const TPM_SPEC = /^(?:swtpm|software|swtpm:host=[A-Za-z0-9.:-]{1,253},port=\d{1,5}|device:\/[A-Za-z0-9/._-]{1,200})$/;

/**
 * The node agent's settings, validated once at start and frozen (STYLE 10). Defaults are the Rust
 * keylime-agent's: port 9002, SHA-256 quotes, the kernel's IMA and UEFI logs.
 */
export class AgentConfig {
  /** Holds the agent's uuid, NK, server certificate, (with `tpm: swtpm`) its swtpm, and emulated logs. */
  @IsString()
  @IsNotEmpty()
  dataDir!: string;

  /** The registrar's registration URL: its plain-HTTP port (Keylime's default 127.0.0.1:8890). */
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  registrarUrl = 'http://127.0.0.1:8890';

  /** PEM file of the registrar's CA, only for an `https://` registrar URL. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  registrarCaFile?: string;

  /** Agent id; absent = the one stored in the data dir, or a new random UUID stored there. */
  @IsOptional()
  @IsKeylimeAgentId()
  uuid?: string;

  @IsString()
  @IsNotEmpty()
  host = '127.0.0.1';

  /** HTTPS port; 0 picks a free port (tests). */
  @IsInt()
  @Min(0)
  @Max(65535)
  port = 9002;

  /** Address sent to the registrar for verifier and tenant to reach us; default `host` (127.0.0.1 for a wildcard host). */
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9.:-]{1,253}$/, { message: 'must be an IP address or a host name' })
  contactIp?: string;

  @Matches(TPM_SPEC, { message: 'must be swtpm, software, swtpm:host=H,port=P or device:/dev/…' })
  tpm = 'swtpm';

  /**
   * How the agent registers (docs/identity.md): `tpm` (a TPM whose EK certificate a vendor CA
   * vouches for), `emulated-tpm` (`tpm` must be `swtpm` or `software`: attested like a TPM, never
   * counted as hardware), `id-secret` (host id + a 256-bit secret kept in the data dir), `id-only`.
   * The last two open no TPM and serve only the liveness route.
   */
  @IsIn(IDENTITY_MODES, { message: `must be one of ${IDENTITY_MODES.join(', ')}` })
  identity: IdentityMode = 'tpm';

  /**
   * The host id: `sys-uuid` or `mac` (read from this machine), or `sys-uuid:<uuid>` / `mac:<address>`
   * given outright. `id-secret` and `id-only` need one (default: the SMBIOS UUID, else the MAC of the
   * main interface). The TPM modes send it only when set, so the registrar can refuse the same host
   * coming back without its TPM under another agent id (emulated nodes on one machine share its ids).
   */
  @IsOptional()
  @Matches(/^(sys-uuid|mac)(:[0-9A-Fa-f:-]{17,36})?$/, { message: 'must be sys-uuid, mac, sys-uuid:<uuid> or mac:<address>' })
  hostId?: string;

  /**
   * With `tpm: swtpm`: the folder of swtpm's local CA that certifies the EK (default
   * `<dataDir>/swtpm/localca`). Emulated nodes sharing one folder share one EK CA, so a registrar
   * trusts them all with one `--ek-ca-dir`.
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  swtpmCaDir?: string;

  @IsIn(AGENT_HASH_ALGS, { message: 'must be one of sha1, sha256, sha384, sha512' })
  hashAlg: AgentHashAlg = 'sha256';

  /**
   * Emulated node: replay `bootLog` (default the shipped UEFI log fixture) into the fresh TPM and keep
   * an emulated IMA log in `<dataDir>/ima`, starting with boot_aggregate.
   */
  @IsBoolean()
  emulate = false;

  /** ASCII IMA list; default the kernel's (`/sys/kernel/security/ima/ascii_runtime_measurements`). */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  imaLog?: string;

  /** Binary UEFI event log; default the kernel's (`/sys/kernel/security/tpm0/binary_bios_measurements`). */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  bootLog?: string;

  /** PEM file of the CA whose client certificates may call the agent; default `<dataDir>/ca/cacert.crt` (created if absent). */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  clientCaFile?: string;

  /**
   * PEM certificate or public key of the revocation key the tenant enrolled this agent with: with it,
   * `POST /notifications/revocation` checks each message's signature and runs `revocationActions`;
   * without it, the route refuses every message (403).
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  revocationCertFile?: string;

  /** Executables run, in order, with each authentic revocation message as JSON on stdin. */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  revocationActions?: string[];

  /**
   * Registrar API version of the registration URLs. Unset, the agent asks the registrar's `GET /version`
   * and uses the highest version both speak (a Keylime registrar routes only the versions it knows).
   */
  @IsOptional()
  @Matches(/^2\.[0-9]$/, { message: 'must be a 2.x API version' })
  registrarApiVersion?: string;
}

/** Agent settings as a caller gives them: `dataDir` plus any fields to override. */
export type AgentConfigInput = Partial<AgentConfig> & { readonly dataDir: string };

/** Validates a plain object into a frozen `AgentConfig`. @throws InvalidConfig naming the field. */
export function buildAgentConfig(plain: Readonly<Record<string, unknown>>): Readonly<AgentConfig> {
  const config = validateServiceConfig(AgentConfig, plain, 'agent');
  if (config.identity === 'emulated-tpm' && config.tpm !== 'swtpm' && config.tpm !== 'software') {
    throw new InvalidConfig('agent.tpm', `identity emulated-tpm needs the agent's own TPM in software (swtpm or software), not ${config.tpm}`);
  }
  return Object.freeze(config);
}

