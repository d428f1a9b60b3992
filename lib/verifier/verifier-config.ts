import { IsArray, IsBoolean, IsIn, IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, IsUrl, Matches, Max, Min } from 'class-validator';
import { InvalidConfig } from '../../interfaces/errors.js';
import {
  validateServiceConfig,
  mergeServiceConfigSources,
  type ServiceConfigSources,
  type ServiceEnvVariable,
} from '../config/service-config-sources.js';
import { compileSeverityPolicy, type SeverityPolicy, type SeverityRule } from '../attestation/severity.js';

export const MB_POLICY_NAMES = ['example', 'accept-all'] as const;
export const MB_EVALUATE_MODES = ['once', 'always'] as const;

/**
 * The verifier's settings, validated once at boot and frozen (STYLE 10). Defaults are Keylime's
 * `[verifier]` section (spec §11): port 8881, quote every 2 s, 5 retries 2 s apart with exponential
 * back-off, 60 s request timeout, measured boot evaluated once. Times are seconds, as in Keylime.
 */
export class VerifierConfig {
  /** Holds the CA, the TLS certificates, the instance id and (without `databaseUrl`) the PGlite database. */
  @IsString()
  @IsNotEmpty()
  dataDir!: string;

  @IsString()
  @IsNotEmpty()
  host = '127.0.0.1';

  /** HTTPS port (public routes + mTLS admin routes); 0 picks a free port. */
  @IsInt()
  @Min(0)
  @Max(65535)
  port = 8881;

  /** `postgres://…` for PostgreSQL; unset means embedded PGlite under `dataDir`. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  databaseUrl?: string;

  /** Keylime `[verifier] uuid`: agents enrolled here carry it as `verifier_id`; only they are polled. */
  @Matches(/^[A-Za-z0-9_.-]{1,80}$/, { message: 'must be 1 to 80 letters, digits, "_", "." or "-"' })
  verifierId = 'default';

  /**
   * This process's name in the `owner` column. Default: a random id stored in `<dataDir>/verifier-instance-id`,
   * so a restarted process on the same data dir takes its agents back at once.
   */
  @IsOptional()
  @Matches(/^[A-Za-z0-9_.:-]{1,128}$/, { message: 'must be 1 to 128 letters, digits, "_", ".", ":" or "-"' })
  instanceId?: string;

  /** Seconds between the end of one round and the next request (`quote_interval`; 0 = at once). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(86400)
  quoteInterval = 2;

  /** Seconds before retry n (`retry_interval`; with back-off `retryInterval ** n`). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(3600)
  retryInterval = 2;

  @IsInt()
  @Min(0)
  @Max(100)
  maxRetries = 5;

  @IsBoolean()
  exponentialBackoff = true;

  /**
   * Seconds after the last successful attestation past which the status no longer says PASS (ironlime;
   * default: 2 quote intervals plus every retry delay — lib/attestation/freshness.ts). Also the bound of
   * a liveness `alive`, there never below 2 × (quoteInterval + requestTimeout) (`livenessFreshnessBound`).
   */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.1)
  @Max(864000)
  staleAfter?: number;

  /**
   * URLs that receive Keylime's signed revocation message (POST JSON) when an agent fails, retried
   * with back-off and never blocking rounds (ironlime; Keylime's `webhook_url`, as a list).
   */
  @IsOptional()
  @IsArray()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true }, { each: true })
  revocationWebhooks?: string[];

  /** PEM CA file that HTTPS revocation webhooks' certificates must chain to (e.g. a broker's CA); default system roots. */
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  revocationWebhookCa?: string;

  /** Seconds one request to an agent may take (`request_timeout`). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0.1)
  @Max(600)
  requestTimeout = 60;

  /** Rounds in flight at once across all agents (requests to agents + their evaluation). */
  @IsInt()
  @Min(1)
  @Max(10000)
  maxConcurrentRounds = 128;

  /**
   * Bytes of agents' quote replies over 256 KiB (`UNCOUNTED_REPLY_BYTES`) the pull loop reads and judges at once, across
   * agents, by their declared length; a reply that does not fit waits, its connection paused, within its
   * request timeout. A reply larger than the whole budget is read alone.
   */
  @IsInt()
  @Min(1024 * 1024)
  @Max(4 * 1024 * 1024 * 1024)
  pullReplyBudget = 128 * 1024 * 1024;

  /** Seconds a process's claim on an agent lasts without renewal; others take the agent over after. */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1)
  @Max(3600)
  leaseSeconds = 30;

  /**
   * Days the verdict history keeps passing and retried rounds (`HistoryPruner`); failures are kept for
   * ever. 0 (default): every row is kept.
   */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(36500)
  historyRetentionDays = 0;

  /**
   * Days the signed audit log keeps passing verdicts (`AuditPruner`); each run of deleted records is
   * replaced by a signed checkpoint, and failed verdicts, admin actions and liveness changes are kept
   * for ever. 0 (default): every record is kept.
   */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(36500)
  auditRetentionDays = 0;

  /** Policy judging the refstate (`measured_boot_policy_name`). */
  @IsIn(MB_POLICY_NAMES, { message: 'must be example or accept-all' })
  measuredBootPolicy: (typeof MB_POLICY_NAMES)[number] = 'example';

  @IsIn(MB_EVALUATE_MODES, { message: 'must be once or always' })
  measuredBootEvaluate: (typeof MB_EVALUATE_MODES)[number] = 'once';

  /** Report IMA ToMToU/violation entries as `ima.validation.tomtou`. */
  @IsBoolean()
  failOnTomtou = false;

  /** `severity_labels`, least to most severe (default Keylime's `info` … `emergency`). */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  severityLabels?: string[];

  /** `severity_policy`: `[{event_id: <regex>, severity_label}]`, first full match wins. */
  @IsOptional()
  @IsArray()
  severityPolicy?: SeverityRule[];

  /** Extra DNS names / IP addresses for the TLS server certificate (localhost is always included). */
  @IsArray()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  tlsSans: string[] = [];

  /** Push model (spec §10.2): seconds a session's challenge may be answered (`nonce_lifetime`, Keylime's fallback 60). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1)
  @Max(3600)
  pushNonceLifetime = 60;

  /** Seconds a push session token lasts, extended by each passing attestation (`session_lifetime`). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1)
  @Max(86400)
  pushSessionLifetime = 180;

  /** Seconds a push attestation's challenge may be answered with evidence (`challenge_lifetime`). */
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1)
  @Max(86400)
  pushChallengeLifetime = 1800;

  /**
   * Seconds of silence after which a push agent is FAILED (spec §10.5: Keylime's `quote_interval × 5`);
   * default 5 quote intervals, at least 10 s.
   */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(1)
  @Max(864000)
  pushTimeout?: number;

  /** Largest accepted request body in bytes (runtime policies can be large; Keylime allows 100 MiB). */
  @IsInt()
  @Min(1024)
  @Max(256 * 1024 * 1024)
  bodyLimit = 64 * 1024 * 1024;

  /**
   * Bytes of `POST /verify/evidence` bodies (public) held at once, by their declared length; past it a
   * request is answered 503 with Retry-After before its body is read. At least one largest body (32 MiB).
   */
  @IsInt()
  @Min(32 * 1024 * 1024)
  @Max(4 * 1024 * 1024 * 1024)
  evidenceBodyBudget = 128 * 1024 * 1024;

  /**
   * Bytes of push evidence bodies (`PATCH /v3.0/agents/:id/attestations/:i`, 32 MiB each at most) over
   * 256 KiB held at once, by declared length, from the token check to the reply; past it 503 with
   * Retry-After before the body is read. At least one largest body.
   */
  @IsInt()
  @Min(32 * 1024 * 1024)
  @Max(4 * 1024 * 1024 * 1024)
  pushEvidenceBodyBudget = 128 * 1024 * 1024;

  /** Open connections at most on the HTTPS listener; further ones are closed as they arrive. */
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  maxConnections = 10_000;

  /** Serve the web dashboard at `/dashboard` on the HTTPS listener (lib/dashboard; docs/dashboard.md). */
  @IsBoolean()
  dashboard = true;
}

/** Verifier settings as a caller gives them: `dataDir` plus any fields of `VerifierConfig`. */
export type VerifierConfigInput = Partial<VerifierConfig> & { readonly dataDir: string };

/** `IRONLIME_VERIFIER_*` variables and the field each sets (docs/verifier.md carries the same table). */
export const VERIFIER_ENV_VARIABLES: readonly ServiceEnvVariable<keyof VerifierConfig>[] = [
  { name: 'IRONLIME_VERIFIER_DATA_DIR', field: 'dataDir', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_HOST', field: 'host', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_PORT', field: 'port', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_DATABASE_URL', field: 'databaseUrl', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_ID', field: 'verifierId', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_INSTANCE_ID', field: 'instanceId', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_QUOTE_INTERVAL', field: 'quoteInterval', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_RETRY_INTERVAL', field: 'retryInterval', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_MAX_RETRIES', field: 'maxRetries', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_EXPONENTIAL_BACKOFF', field: 'exponentialBackoff', kind: 'boolean' },
  { name: 'IRONLIME_VERIFIER_REQUEST_TIMEOUT', field: 'requestTimeout', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_MAX_CONCURRENT_ROUNDS', field: 'maxConcurrentRounds', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_PULL_REPLY_BUDGET', field: 'pullReplyBudget', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_LEASE_SECONDS', field: 'leaseSeconds', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_HISTORY_RETENTION_DAYS', field: 'historyRetentionDays', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_AUDIT_RETENTION_DAYS', field: 'auditRetentionDays', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_STALE_AFTER', field: 'staleAfter', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_REVOCATION_WEBHOOKS', field: 'revocationWebhooks', kind: 'list' },
  { name: 'IRONLIME_VERIFIER_REVOCATION_WEBHOOK_CA', field: 'revocationWebhookCa', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_MEASURED_BOOT_POLICY', field: 'measuredBootPolicy', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_MEASURED_BOOT_EVALUATE', field: 'measuredBootEvaluate', kind: 'string' },
  { name: 'IRONLIME_VERIFIER_FAIL_ON_TOMTOU', field: 'failOnTomtou', kind: 'boolean' },
  { name: 'IRONLIME_VERIFIER_SEVERITY_LABELS', field: 'severityLabels', kind: 'list' },
  { name: 'IRONLIME_VERIFIER_SEVERITY_POLICY', field: 'severityPolicy', kind: 'json' },
  { name: 'IRONLIME_VERIFIER_TLS_SANS', field: 'tlsSans', kind: 'list' },
  { name: 'IRONLIME_VERIFIER_BODY_LIMIT', field: 'bodyLimit', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_EVIDENCE_BODY_BUDGET', field: 'evidenceBodyBudget', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_PUSH_EVIDENCE_BODY_BUDGET', field: 'pushEvidenceBodyBudget', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_MAX_CONNECTIONS', field: 'maxConnections', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_DASHBOARD', field: 'dashboard', kind: 'boolean' },
  { name: 'IRONLIME_VERIFIER_PUSH_NONCE_LIFETIME', field: 'pushNonceLifetime', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_PUSH_SESSION_LIFETIME', field: 'pushSessionLifetime', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_PUSH_CHALLENGE_LIFETIME', field: 'pushChallengeLifetime', kind: 'number' },
  { name: 'IRONLIME_VERIFIER_PUSH_TIMEOUT', field: 'pushTimeout', kind: 'number' },
];

export type VerifierConfigSources = ServiceConfigSources<keyof VerifierConfig>;

/**
 * Builds the verifier config from defaults < file < environment < overrides, validates it and freezes it.
 * @throws InvalidConfig naming the file, variable or field at fault.
 */
export function loadVerifierConfig(sources: VerifierConfigSources): Readonly<VerifierConfig> {
  return buildVerifierConfig(mergeServiceConfigSources(sources, VERIFIER_ENV_VARIABLES));
}

/**
 * Validates a plain object into a frozen `VerifierConfig` (unknown fields rejected); the severity
 * settings are compiled here once so a bad label or regex stops startup.
 * @throws InvalidConfig
 */
export function buildVerifierConfig(plain: Readonly<Record<string, unknown>>): Readonly<VerifierConfig> {
  const config = validateServiceConfig(VerifierConfig, plain, 'verifier');
  verifierSeverityPolicy(config);
  Object.freeze(config.tlsSans);
  return Object.freeze(config);
}

/** Seconds of silence that fail a push agent (see `pushTimeout`). */
export function pushTimeoutSeconds(config: Readonly<VerifierConfig>): number {
  return config.pushTimeout ?? Math.max(10, config.quoteInterval * 5);
}

/** The compiled severity policy of a config. @throws InvalidConfig */
export function verifierSeverityPolicy(config: Readonly<VerifierConfig>): SeverityPolicy {
  const policy = config.severityPolicy;
  if (policy !== undefined) {
    policy.forEach((rule, i) => {
      if (rule === null || typeof rule !== 'object' || typeof rule.event_id !== 'string' || typeof rule.severity_label !== 'string') {
        throw new InvalidConfig(`verifier.severityPolicy[${i}]`, 'must be {event_id: <regex>, severity_label: <label>}');
      }
    });
  }
  return compileSeverityPolicy({
    ...(config.severityLabels === undefined ? {} : { labels: config.severityLabels }),
    ...(policy === undefined ? {} : { policy }),
  });
}



