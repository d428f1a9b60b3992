import { InvalidConfig } from '../../interfaces/errors.js';

type EnvKind = 'string' | 'boolean' | 'integer' | 'list';

/** One `IRONLIME_*` variable and the config field it sets. */
export interface EnvVariable {
  readonly name: string;
  readonly path: readonly [string] | readonly [string, string];
  readonly kind: EnvKind;
}

/**
 * Every environment variable the loader reads: the field's name in UPPER_SNAKE_CASE, prefixed with
 * `IRONLIME_` and, for the `keylime` section, `IRONLIME_KEYLIME_`. Other `IRONLIME_*` variables are
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
    const value = convert(variable, text);
    const [first, second] = variable.path;
    if (second === undefined) {
      result[first] = value;
    } else {
      const section = result[first];
      const base = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
      result[first] = { ...base, [second]: value };
    }
  }
  return result;
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
