import { IsArray, IsInt, IsNotEmpty, IsOptional, IsString, IsUrl, Max, Min } from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';
import {
  validateServiceConfig,
  mergeServiceConfigSources,
  type ServiceConfigSources,
  type ServiceEnvVariable,
} from '../config/service-config-sources.js';

/**
 * The broker's settings, validated once at boot and frozen. Defaults: KBS's port 8080 over HTTPS with
 * a certificate from the data folder's CA, 5-minute sessions and tokens (trustee's defaults), tokens
 * accepted from this broker's own key only.
 */
export class BrokerConfig {
  /** Holds the CA, TLS certificate, the broker's keys and (without `databaseUrl`) the embedded database. */
  @IsString()
  @IsNotEmpty()
  dataDir!: string;

  @IsString()
  @IsNotEmpty()
  host = '127.0.0.1';

  /** HTTPS port; 0 picks a free port. */
  @IsInt()
  @Min(0)
  @Max(65535)
  port = 8080;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  databaseUrl?: string;

  /** `iss` of the EAR tokens this broker issues (passport issuer). */
  @IsString()
  @IsNotEmpty()
  issuer = 'ironlime-broker';

  /** `aud` put into issued tokens and required in accepted ones, when set. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  audience?: string;

  @IsInt()
  @Min(10)
  @Max(3600)
  tokenLifetimeSeconds = 300;

  /** Tokens from trusted issuers living longer than this are refused. */
  @IsInt()
  @Min(10)
  @Max(86_400)
  maxTokenLifetimeSeconds = 3600;

  /** Time from `/auth` to the end of the session (attest and cookie-authorised fetches). */
  @IsInt()
  @Min(10)
  @Max(3600)
  sessionTimeoutSeconds = 300;

  /** `[ISSUER=]FILE` of other issuers whose tokens release resources here (JWKS or PEM certificate). */
  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  trustIssuers: string[] = [];

  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  tlsSans: string[] = [];

  /**
   * PEM certificate (or public key) of the verifier's revocation key: with it, `POST /kbs/v0/revocation`
   * accepts Keylime revocation messages signed by that key (a `--revocation-webhook` target).
   */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  revocationCert?: string;

  /**
   * The continuous verifier asked by resources with `verifier_standing` (`GET /agents/{id}`), with its
   * CA and a client certificate from it (PEM files). Without it such resources are refused. An origin
   * and path only: the client sends no credentials, query or fragment from it, so one there is refused
   * at start rather than dropped (and a text that is no URL is refused rather than failing every check).
   */
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true, disallow_auth: true, allow_query_components: false, allow_fragments: false })
  verifierUrl?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  verifierCa?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  verifierCert?: string;

  @IsOptional()
  @IsString()
  @IsNotEmpty()
  verifierKey?: string;

  /** Largest request body: evidence carries whole IMA lists, admin requests runtime policies. */
  @IsInt()
  @Min(1024)
  @Max(256 * 1024 * 1024)
  bodyLimit = 64 * 1024 * 1024;
}

export const BROKER_ENV_VARIABLES: readonly ServiceEnvVariable<keyof BrokerConfig>[] = [
  { name: 'IRONLIME_BROKER_DATA_DIR', field: 'dataDir', kind: 'string' },
  { name: 'IRONLIME_BROKER_HOST', field: 'host', kind: 'string' },
  { name: 'IRONLIME_BROKER_PORT', field: 'port', kind: 'integer' },
  { name: 'IRONLIME_BROKER_DATABASE_URL', field: 'databaseUrl', kind: 'string' },
  { name: 'IRONLIME_BROKER_ISSUER', field: 'issuer', kind: 'string' },
  { name: 'IRONLIME_BROKER_AUDIENCE', field: 'audience', kind: 'string' },
  { name: 'IRONLIME_BROKER_TOKEN_LIFETIME', field: 'tokenLifetimeSeconds', kind: 'integer' },
  { name: 'IRONLIME_BROKER_SESSION_TIMEOUT', field: 'sessionTimeoutSeconds', kind: 'integer' },
  { name: 'IRONLIME_BROKER_TRUST_ISSUERS', field: 'trustIssuers', kind: 'list' },
  { name: 'IRONLIME_BROKER_TLS_SANS', field: 'tlsSans', kind: 'list' },
  { name: 'IRONLIME_BROKER_REVOCATION_CERT', field: 'revocationCert', kind: 'string' },
  { name: 'IRONLIME_BROKER_VERIFIER_URL', field: 'verifierUrl', kind: 'string' },
  { name: 'IRONLIME_BROKER_VERIFIER_CA', field: 'verifierCa', kind: 'string' },
  { name: 'IRONLIME_BROKER_VERIFIER_CERT', field: 'verifierCert', kind: 'string' },
  { name: 'IRONLIME_BROKER_VERIFIER_KEY', field: 'verifierKey', kind: 'string' },
];

export function loadBrokerConfig(sources: ServiceConfigSources<keyof BrokerConfig>): Readonly<BrokerConfig> {
  return buildBrokerConfig(mergeServiceConfigSources(sources, BROKER_ENV_VARIABLES));
}

/** Validates a plain object into a frozen `BrokerConfig`. @throws InvalidConfig */
export function buildBrokerConfig(plain: Readonly<Record<string, unknown>>): Readonly<BrokerConfig> {
  const config = validateServiceConfig(BrokerConfig, plain, 'broker');
  if (config.tokenLifetimeSeconds > config.maxTokenLifetimeSeconds) {
    throw new InvalidConfig('broker.tokenLifetimeSeconds', 'must not exceed maxTokenLifetimeSeconds');
  }
  Object.freeze(config.trustIssuers);
  Object.freeze(config.tlsSans);
  return Object.freeze(config);
}
