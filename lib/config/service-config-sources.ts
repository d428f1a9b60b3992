import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';
import { firstConstraintMessage } from './constraint-message.js';
import { readConfigFileSync } from './read-config-file.js';

/**
 * How a service's `IRONLIME_<SERVICE>_*` variable is read: `integer` is a whole number of at most nine
 * digits, `number` may carry up to six decimals, `list` is comma-separated, `json` is parsed.
 */
export type ServiceEnvKind = 'string' | 'integer' | 'number' | 'boolean' | 'list' | 'json';

/** One environment variable and the config field it sets. */
export interface ServiceEnvVariable<Field extends string> {
  readonly name: string;
  readonly field: Field;
  readonly kind: ServiceEnvKind;
}

/** Where a service's settings come from, lowest precedence first after the class defaults. */
export interface ServiceConfigSources<Field extends string> {
  /** JSON file with fields of the service's config. */
  readonly file?: string;
  /** Usually `process.env`; only the service's own variables are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence (command-line options); undefined values are ignored. */
  readonly overrides?: Readonly<Partial<Record<Field, unknown>>>;
}

/**
 * Merges file < environment < overrides into one plain object for the service's validator.
 * @throws InvalidConfig naming the file or the variable at fault.
 */
export function mergeServiceConfigSources<Field extends string>(
  sources: ServiceConfigSources<Field>,
  variables: readonly ServiceEnvVariable<Field>[],
): Record<string, unknown> {
  const merged: Record<string, unknown> = sources.file === undefined ? {} : readJsonObject(sources.file);
  for (const variable of variables) {
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
  return merged;
}

/**
 * Validates a service's plain settings into its config class (members given as undefined are left to
 * the class defaults; unknown fields are refused). Throws `InvalidConfig` naming `<service>.<field>`
 * and the first failed constraint. The caller adds its own cross-field checks and freezes the result.
 */
export function validateServiceConfig<T extends object>(configClass: new () => T, plain: Readonly<Record<string, unknown>>, service: string): T {
  const defined = Object.fromEntries(Object.entries(plain).filter(([, value]) => value !== undefined));
  const config = plainToInstance(configClass, defined);
  const first = validateSync(config, { whitelist: true, forbidNonWhitelisted: true })[0];
  if (first !== undefined) {
    throw new InvalidConfig(`${service}.${first.property}`, firstConstraintMessage(first));
  }
  return config;
}

function convert(name: string, kind: ServiceEnvKind, text: string): unknown {
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
    case 'number':
      if (/^[0-9]{1,9}(\.[0-9]{1,6})?$/.test(text)) {
        return Number(text);
      }
      throw new InvalidConfig(name, `must be a non-negative number, got "${text}"`);
    case 'boolean':
      if (text === 'true' || text === 'false') {
        return text === 'true';
      }
      throw new InvalidConfig(name, `must be true or false, got "${text}"`);
    case 'json':
      try {
        return JSON.parse(text) as unknown;
      } catch (cause) {
        throw new InvalidConfig(name, 'must be JSON', { cause });
      }
  }
}

function readJsonObject(file: string): Record<string, unknown> {
  const text = readConfigFileSync(file, file, 'cannot read the config file as JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new InvalidConfig(file, 'cannot read the config file as JSON', { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidConfig(file, 'must hold a JSON object');
  }
  return { ...(parsed as Record<string, unknown>) };
}
