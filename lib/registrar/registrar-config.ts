import { readFileSync } from 'node:fs';
import { plainToInstance } from 'class-transformer';
import {
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Max,
  Min,
  validateSync,
  type ValidationError,
} from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';

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
}

type EnvKind = 'string' | 'integer' | 'list';

/** `IRONLIME_REGISTRAR_*` variables and the field each sets (docs/registrar.md carries the same table). */
export const REGISTRAR_ENV_VARIABLES: readonly { name: string; field: keyof RegistrarConfig; kind: EnvKind }[] = [
  { name: 'IRONLIME_REGISTRAR_DATA_DIR', field: 'dataDir', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_HOST', field: 'host', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_PORT', field: 'port', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_TLS_PORT', field: 'tlsPort', kind: 'integer' },
  { name: 'IRONLIME_REGISTRAR_DATABASE_URL', field: 'databaseUrl', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_EK_CHECK', field: 'ekCheck', kind: 'string' },
  { name: 'IRONLIME_REGISTRAR_EK_CA_DIRS', field: 'ekCaDirs', kind: 'list' },
  { name: 'IRONLIME_REGISTRAR_TLS_SANS', field: 'tlsSans', kind: 'list' },
  { name: 'IRONLIME_REGISTRAR_BODY_LIMIT', field: 'bodyLimit', kind: 'integer' },
];

export interface RegistrarConfigSources {
  /** JSON file with fields of `RegistrarConfig`. */
  readonly file?: string;
  /** Usually `process.env`; only `REGISTRAR_ENV_VARIABLES` are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence, e.g. command-line options; undefined values are ignored. */
  readonly overrides?: Readonly<Partial<Record<keyof RegistrarConfig, unknown>>>;
}

/**
 * Builds the registrar config from defaults < file < environment < overrides, validates it (unknown
 * fields rejected) and freezes it.
 *
 * @throws InvalidConfig naming the file, variable or field at fault.
 */
export function loadRegistrarConfig(sources: RegistrarConfigSources): Readonly<RegistrarConfig> {
  const merged: Record<string, unknown> = sources.file === undefined ? {} : readJsonFile(sources.file);
  for (const variable of REGISTRAR_ENV_VARIABLES) {
    const text = sources.env?.[variable.name];
    if (text !== undefined && text !== '') {
      merged[variable.field] = convert(variable.name, variable.kind, text);
    }
  }
  for (const [field, value] of Object.entries(sources.overrides ?? {})) {
    if (value !== undefined) {
      merged[field] = value;
    }
  }
  return buildRegistrarConfig(merged);
}

/** Validates a plain object into a frozen `RegistrarConfig`. @throws InvalidConfig */
export function buildRegistrarConfig(plain: Readonly<Record<string, unknown>>): Readonly<RegistrarConfig> {
  const config = plainToInstance(RegistrarConfig, plain);
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true });
  const first = errors[0];
  if (first !== undefined) {
    throw new InvalidConfig(`registrar.${first.property}`, firstMessage(first));
  }
  Object.freeze(config.ekCaDirs);
  Object.freeze(config.tlsSans);
  return Object.freeze(config);
}

function firstMessage(error: ValidationError): string {
  if (error.constraints?.['whitelistValidation'] !== undefined) {
    return 'unknown field';
  }
  const message = Object.values(error.constraints ?? {})[0] ?? 'is invalid';
  const own = `${error.property} `;
  return message.startsWith(own) ? message.slice(own.length) : message;
}

function convert(name: string, kind: EnvKind, text: string): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'integer':
      if (/^[0-9]{1,9}$/.test(text)) {
        return Number(text);
      }
      throw new InvalidConfig(name, `must be a non-negative integer, got "${text}"`);
  }
}

function readJsonFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (cause) {
    throw new InvalidConfig(file, 'cannot read the config file as JSON', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidConfig(file, 'must hold a JSON object');
  }
  return { ...(parsed as Record<string, unknown>) };
}
