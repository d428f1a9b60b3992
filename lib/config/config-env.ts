import { InvalidConfig } from '../../interfaces/errors.js';

type EnvKind = 'string' | 'boolean' | 'integer' | 'list';

/** One `IRONLIME_*` variable and the config field it sets. */
export interface EnvVariable {
  readonly name: string;
  /** Section names, then the field (`['attestation', 'minimumTrustLevel', 'deploy']`). */
  readonly path: readonly [string, ...string[]];
  readonly kind: EnvKind;
}

/**
 * Every environment variable the loader reads: the field's name in UPPER_SNAKE_CASE, prefixed with
 * `IRONLIME_` and, for a section, its path (`IRONLIME_KEYLIME_`, `IRONLIME_ATTESTATION_MINIMUM_TRUST_LEVEL_`). Other `IRONLIME_*` variables are
 * left alone (services read their own). `docs/config.md` carries the same table.
 */
export const ENV_VARIABLES: readonly EnvVariable[] = [
  { name: 'IRONLIME_DATA_DIR', path: ['dataDir'], kind: 'string' },
  { name: 'IRONLIME_DATABASE_URL', path: ['databaseUrl'], kind: 'string' },
  { name: 'IRONLIME_ENABLED_ATTESTATION_INTERFACES', path: ['enabledAttestationInterfaces'], kind: 'list' },
  { name: 'IRONLIME_DEFAULT_ATTESTATION_INTERFACE', path: ['defaultAttestationInterface'], kind: 'string' },
  {
    name: 'IRONLIME_KEYLIME_FAIL_CLEAN_ON_ATTESTATION_FAILURE',
    path: ['keylime', 'failCleanOnAttestationFailure'],
    kind: 'boolean',
  },
  {
    name: 'IRONLIME_KEYLIME_FAIL_DEPLOY_ON_ATTESTATION_FAILURE',
    path: ['keylime', 'failDeployOnAttestationFailure'],
    kind: 'boolean',
  },
  { name: 'IRONLIME_KEYLIME_VERIFIER_URL', path: ['keylime', 'verifierUrl'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_REGISTRAR_URL', path: ['keylime', 'registrarUrl'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_TLS_CA_CERT', path: ['keylime', 'tlsCaCert'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_TLS_CLIENT_CERT', path: ['keylime', 'tlsClientCert'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_TLS_CLIENT_KEY', path: ['keylime', 'tlsClientKey'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_EXTRA_EK_CA_DIRS', path: ['keylime', 'extraEkCaDirs'], kind: 'list' },
  { name: 'IRONLIME_ATTESTATION_MINIMUM_TRUST_LEVEL_CLEAN', path: ['attestation', 'minimumTrustLevel', 'clean'], kind: 'string' },
  { name: 'IRONLIME_ATTESTATION_MINIMUM_TRUST_LEVEL_DEPLOY', path: ['attestation', 'minimumTrustLevel', 'deploy'], kind: 'string' },
  { name: 'IRONLIME_KEYLIME_STATUS_TIMEOUT_SECONDS', path: ['keylime', 'statusTimeoutSeconds'], kind: 'integer' },
  {
    name: 'IRONLIME_KEYLIME_STATUS_POLL_INTERVAL_SECONDS',
    path: ['keylime', 'statusPollIntervalSeconds'],
    kind: 'integer',
  },
];

/**
 * Returns a copy of `plain` with every set `IRONLIME_*` variable of `ENV_VARIABLES` applied on top
 * (environment wins over the file). An empty variable counts as unset.
 *
 * @throws InvalidConfig naming the variable when its text cannot be converted to the field's type.
 */
export function applyEnvironment(
  plain: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...plain };
  for (const variable of ENV_VARIABLES) {
    const text = env[variable.name];
    if (text === undefined || text === '') {
      continue;
    }
    Object.assign(result, withValueAt(result, variable.path, convert(variable, text)));
  }
  return result;
}

/** A copy of `object` with `value` at `path`, copying every section on the way (the file's objects stay untouched). */
function withValueAt(object: Readonly<Record<string, unknown>>, path: readonly [string, ...string[]], value: unknown): Record<string, unknown> {
  const [first, ...rest] = path;
  if (rest.length === 0) return { ...object, [first]: value };
  const section = object[first];
  const base = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
  return { ...object, [first]: withValueAt(base, rest as [string, ...string[]], value) };
}

function convert(variable: EnvVariable, text: string): unknown {
  switch (variable.kind) {
    case 'string':
      return text;
    case 'list':
      return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
    case 'boolean':
      if (text === 'true' || text === 'false') {
        return text === 'true';
      }
      throw new InvalidConfig(variable.name, `must be "true" or "false", got "${text}"`);
    case 'integer':
      if (/^\d+$/.test(text)) {
        return Number(text);
      }
      throw new InvalidConfig(variable.name, `must be a non-negative integer, got "${text}"`);
  }
}
