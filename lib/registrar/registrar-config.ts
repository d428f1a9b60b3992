import {
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Max,
  Min,
} from 'class-validator';
import {
  mergeServiceConfigSources,
  validateServiceConfig,
  type ServiceConfigSources,
  type ServiceEnvVariable,
} from '../config/service-config-sources.js';

/** What the registrar does with the EK certificate at registration (stricter than Keylime, §5.3). */
export const EK_CHECK_MODES = ['require', 'warn', 'off'] as const;
export type EkCheckMode = (typeof EK_CHECK_MODES)[number];

/**
 * The registrar's settings, validated once at boot and frozen (STYLE 10). Defaults are Keylime's
 * ports (8890 plain HTTP, 8891 TLS) and the secure choices: EK certificates must chain to a trusted
 * vendor CA, request bodies are bounded.
 */
export class RegistrarConfig {
  /** Holds the CA, the TLS certificates and (without `databaseUrl`) the embedded PGlite database. */
  @IsString()
  @IsNotEmpty()
  dataDir!: string;

  @IsString()
  @IsNotEmpty()
  host = '127.0.0.1';

  /** Plain-HTTP registration port; 0 picks a free port (tests). */
  @IsInt()
  @Min(0)
  @Max(65535)
  port = 8890;

  /** TLS port (public routes + mTLS admin routes); 0 picks a free port. */
  @IsInt()
  @Min(0)
  @Max(65535)
  tlsPort = 8891;

  /** `postgres://…` for PostgreSQL; unset means embedded PGlite under `dataDir`. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  databaseUrl?: string;

  @IsIn(EK_CHECK_MODES, { message: 'must be one of require, warn, off' })
  ekCheck: EkCheckMode = 'require';

  /** Folders of extra trusted EK CA certificates (PEM/DER), added to the shipped vendor store. */
  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  ekCaDirs: string[] = [];

  /** Extra DNS names / IP addresses for the TLS server certificate (localhost is always included). */
  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  tlsSans: string[] = [];

  /** Largest accepted request body in bytes. */
  @IsInt()
  @Min(1024)
  @Max(16 * 1024 * 1024)
  bodyLimit = 256 * 1024;

  /** Agent ids one EK may be registered under at once; a new id beyond that is refused (403). */
  @IsInt()
  @Min(1)
  @Max(1000)
  maxAgentsPerEk = 8;

  /** Seconds after its last registration a never-activated record is removed. */
  @IsInt()
  @Min(10)
  @Max(30 * 24 * 3600)
  inactiveRegistrationTtl = 3600;

  /**
   * Agents of each identity mode other than `tpm` (`id-only`, `id-secret`, `emulated-tpm`, counted
   * apart) the registrar holds at once; a new agent id of a mode at its limit is refused (403). Such a
   * registration costs an anonymous caller nothing and no other bound reaches it; a `tpm`
   * registration is never refused by it. 0 admits none.
   */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  maxAgentsPerNonTpmMode = 10_000;
}

/** `IRONLIME_REGISTRAR_*` variables and the field each sets (docs/registrar.md carries the same table). */
export const REGISTRAR_ENV_VARIABLES: readonly ServiceEnvVariable<keyof RegistrarConfig>[] = [
  { name: 'IRONLIME_REGISTRAR_DATA_DIR', field: 'dataDir', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_HOST', field: 'host', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_PORT', field: 'port', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_TLS_PORT', field: 'tlsPort', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_DATABASE_URL', field: 'databaseUrl', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_EK_CHECK', field: 'ekCheck', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_EK_CA_DIRS', field: 'ekCaDirs', kind: 'list' },
  { name: 'IRONLIME_REGISTRAR_TLS_SANS', field: 'tlsSans', kind: 'list' },
  { name: 'IRONLIME_REGISTRAR_BODY_LIMIT', field: 'bodyLimit', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_MAX_AGENTS_PER_EK', field: 'maxAgentsPerEk', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_INACTIVE_REGISTRATION_TTL', field: 'inactiveRegistrationTtl', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_MAX_AGENTS_PER_NON_TPM_MODE', field: 'maxAgentsPerNonTpmMode', kind: 'integer' },
];

export type RegistrarConfigSources = ServiceConfigSources<keyof RegistrarConfig>;

/**
 * Builds the registrar config from defaults < file < environment < overrides, validates it (unknown
 * fields rejected) and freezes it.
 *
 * @throws InvalidConfig naming the file, variable or field at fault.
 */
export function loadRegistrarConfig(sources: RegistrarConfigSources): Readonly<RegistrarConfig> {
  return buildRegistrarConfig(mergeServiceConfigSources(sources, REGISTRAR_ENV_VARIABLES));
}

/** Validates a plain object into a frozen `RegistrarConfig`. @throws InvalidConfig */
export function buildRegistrarConfig(plain: Readonly<Record<string, unknown>>): Readonly<RegistrarConfig> {
  const config = validateServiceConfig(RegistrarConfig, plain, 'registrar');
  Object.freeze(config.ekCaDirs);
  Object.freeze(config.tlsSans);
  return Object.freeze(config);
}



