import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';
import { firstConstraintMessage } from './constraint-message.js';
import { isPlainHttp } from '../http/validators.js';
import { applyEnvironment } from './config-env.js';
import { readConfigFileSync } from './read-config-file.js';
import { IronlimeConfig } from './ironlime-config.js';

/** Where `loadConfig` reads from; both are optional. */
export interface LoadConfigOptions {
  /** A JSON file holding an object with the fields of `IronlimeConfig`. */
  readonly file?: string;
  /** Usually `process.env`; only the `IRONLIME_*` variables of `ENV_VARIABLES` are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Reads the JSON file (if any), applies the `IRONLIME_*` environment variables on top, then validates
 * and freezes the result with `buildConfig`.
 *
 * @throws InvalidConfig naming the file, variable or field at fault.
 */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<IronlimeConfig> {
  const fromFile = options.file === undefined ? {} : readConfigFile(options.file);
  return buildConfig(applyEnvironment(fromFile, options.env ?? {}));
}

/**
 * Validates a plain object (unknown fields are rejected at every level, defaults fill the gaps) and
 * returns a deeply frozen `IronlimeConfig`.
 *
 * @throws InvalidConfig naming the first invalid field as a dotted path (`keylime.verifierUrl`).
 */
export function buildConfig(plain: unknown): Readonly<IronlimeConfig> {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new InvalidConfig('(root)', 'must be a JSON object');
  }
  const config = plainToInstance(IronlimeConfig, plain);
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  const first = errors[0];
  if (first !== undefined) {
    const [field, message] = describe(first, '');
    throw new InvalidConfig(field, message);
  }
  checkConsistency(config);
  return deepFreeze(config);
}

function readConfigFile(file: string): Record<string, unknown> {
  const text = readConfigFileSync(file, file, 'cannot read the config file');
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (cause) {
    throw new InvalidConfig(file, 'not valid JSON', { cause });
  }
}

/** The dotted path and first message of the first leaf error under `error`. */
function describe(error: ValidationError, prefix: string): [string, string] {
  const field = `${prefix}${error.property}`;
  if (error.constraints !== undefined && Object.keys(error.constraints).length > 0) {
    return [field, firstConstraintMessage(error)];
  }
  const child = error.children?.[0];
  return child === undefined ? [field, 'is invalid'] : describe(child, `${field}.`);
}

/** Rules that span several fields. */
function checkConsistency(config: IronlimeConfig): void {
  const chosen = config.defaultAttestationInterface;
  if (chosen !== undefined && !config.enabledAttestationInterfaces.includes(chosen)) {
    throw new InvalidConfig(
      'defaultAttestationInterface',
      `"${chosen}" is not in enabledAttestationInterfaces (${config.enabledAttestationInterfaces.join(', ')})`,
    );
  }
  const { tlsClientCert, tlsClientKey, tlsCaCert } = config.keylime;
  if ((tlsClientCert === undefined) !== (tlsClientKey === undefined)) {
    const missing = tlsClientCert === undefined ? 'keylime.tlsClientCert' : 'keylime.tlsClientKey';
    throw new InvalidConfig(missing, 'tlsClientCert and tlsClientKey must be set together');
  }
  // The CA is there to verify these two services: on a plain http URL it (and the client certificate)
  // would be dropped without a word, and the driver would talk to whoever answers.
  for (const field of ['verifierUrl', 'registrarUrl'] as const) {
    const url = config.keylime[field];
    if (url !== undefined) checkServiceUrlParts(`keylime.${field}`, url);
    if (tlsCaCert !== undefined && url !== undefined && isPlainHttp(url)) {
      throw new InvalidConfig(`keylime.${field}`, 'is http:// but keylime.tlsCaCert is set: use https:// (plain http uses neither the CA nor the client certificate)');
    }
  }
}

/**
 * The Keylime clients keep only a service URL's origin and path: credentials, a query or a fragment
 * would be dropped without a word (and credentials would sit in the config in clear).
 */
function checkServiceUrlParts(setting: string, text: string): void {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url === undefined) return;
  if (url.username !== '' || url.password !== '') {
    throw new InvalidConfig(setting, 'must not carry credentials in the URL');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new InvalidConfig(setting, 'must not carry a query or fragment (neither is sent)');
  }
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (typeof child === 'object' && child !== null) {
      deepFreeze(child as object);
    }
  }
  return Object.freeze(value);
}
