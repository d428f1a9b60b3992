// class-validator reads decorator metadata: the Reflect polyfill must be loaded first.
import 'reflect-metadata';
import { isAbsolute } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsNotEmpty, IsOptional, IsString, IsUrl, Matches, Max, MaxLength, Min, validateSync } from 'class-validator';
import { InvalidParameterValue, MissingParameterValue } from '../../interfaces/errors.js';
import type { DriverInfo } from '../../interfaces/node.js';
import type { KeylimeSettings } from '../../interfaces/settings.js';
import { parseTpmPolicy, type TpmPolicy } from '../../lib/attestation/tpm-policy.js';
import { isPlainHttp, IsKeylimeAgentId } from '../../lib/http/validators.js';
import { TRUST_LEVELS, type TrustLevel } from '../../lib/identity/trust-level.js';
import { parseDocumentSource, type CheckedDocument } from './document-source.js';
import { IsHostAddress } from '../../lib/http/host-address.js';
import { nearestName } from './nearest-name.js';
import { OPTIONAL_PROPERTIES, REQUIRED_PROPERTIES } from './keylime-properties.js';

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const SERVICE_URL = { protocols: ['http', 'https'], require_tld: false, require_protocol: true };
const LOCATION = 'must be an absolute file path or an http(s) URL';

/**
 * The keylime driver's `driver_info` fields as class-validator sees them. Only these keys are read:
 * `driver_info` is shared with the node's other interfaces, so other keys are left alone. Messages start
 * with "must" so the field name can be put in front.
 */
class KeylimeDriverInfoFields {
  @IsOptional() @IsString() @IsNotEmpty({ message: LOCATION }) @MaxLength(4096)
  keylime_allowlist?: string;

  @IsOptional() @Matches(SHA256_HEX, { message: 'must be a sha256 digest (64 hex digits)' })
  keylime_allowlist_checksum?: string;

  @IsOptional() @IsString() @IsNotEmpty({ message: LOCATION }) @MaxLength(4096)
  keylime_excludelist?: string;

  @IsOptional() @Matches(SHA256_HEX, { message: 'must be a sha256 digest (64 hex digits)' })
  keylime_excludelist_checksum?: string;

  @IsOptional() @IsString() @IsNotEmpty({ message: LOCATION }) @MaxLength(4096)
  keylime_runtime_policy?: string;

  @IsOptional() @Matches(SHA256_HEX, { message: 'must be a sha256 digest (64 hex digits)' })
  keylime_runtime_policy_checksum?: string;

  @IsOptional() @IsString() @IsNotEmpty({ message: LOCATION }) @MaxLength(4096)
  keylime_mb_refstate?: string;

  @IsOptional() @Matches(SHA256_HEX, { message: 'must be a sha256 digest (64 hex digits)' })
  keylime_mb_refstate_checksum?: string;

  @IsOptional() @IsString({ message: 'must be Keylime tpm_policy JSON text' }) @MaxLength(65_536)
  keylime_tpm_policy?: string;

  @IsOptional() @IsKeylimeAgentId()
  keylime_agent_uuid?: string;

  @IsOptional() @IsHostAddress()
  keylime_agent_address?: string;

  @IsOptional() @IsInt({ message: 'must be an integer from 1 to 65535' }) @Min(1, { message: 'must be an integer from 1 to 65535' })
  @Max(65535, { message: 'must be an integer from 1 to 65535' })
  keylime_agent_port?: number;

  @IsOptional() @IsIn(['pull', 'push'], { message: 'must be "pull" or "push"' })
  keylime_agent_mode?: 'pull' | 'push';

  @IsOptional() @IsUrl(SERVICE_URL, { message: 'must be an http(s) URL' })
  keylime_verifier_url?: string;

  @IsOptional() @IsUrl(SERVICE_URL, { message: 'must be an http(s) URL' })
  keylime_registrar_url?: string;

  @IsOptional() @IsString() @IsNotEmpty()
  keylime_tls_ca?: string;

  @IsOptional() @IsString() @IsNotEmpty()
  keylime_tls_cert?: string;

  @IsOptional() @IsString() @IsNotEmpty()
  keylime_tls_key?: string;

  @IsOptional() @IsIn(TRUST_LEVELS, { message: `must be one of ${TRUST_LEVELS.join(', ')}` })
  keylime_minimum_trust_level?: TrustLevel;
}

/** A PEM file and the setting it came from (`driver_info.keylime_tls_ca` or `keylime.tlsCaCert`). */
export interface TlsFile {
  readonly path: string;
  readonly setting: string;
}

/** Where the agent is, as far as `driver_info` says; missing parts come from the registrar or a locator. */
export interface AgentLocationInfo {
  readonly uuid: string | undefined;
  readonly address: string | undefined;
  readonly port: number | undefined;
}

/** `driver_info` (with config defaults applied) after `parseKeylimeDriverInfo`: typed and normalised. */
export interface KeylimeNodeSettings {
  /** The allowlist or the JSON runtime policy, with its checksum (always set for this document). */
  readonly policy: CheckedDocument & { readonly format: 'allowlist' | 'runtime-policy' };
  readonly excludelist: CheckedDocument | undefined;
  readonly mbRefstate: CheckedDocument | undefined;
  /** The PCR policy, parsed; `tpmPolicyJson` is the object sent (without `mask`, added at enrolment). */
  readonly tpmPolicy: TpmPolicy;
  readonly tpmPolicyJson: Readonly<Record<string, readonly string[]>>;
  readonly agent: AgentLocationInfo;
  /** `push`: the agent attests itself (spec §10); its address and port are not used. */
  readonly agentMode: 'pull' | 'push';
  readonly verifierUrl: string;
  readonly registrarUrl: string;
  /** Where each URL came from (`driver_info.keylime_verifier_url` or `keylime.verifierUrl`), for errors naming it. */
  readonly verifierUrlSetting: string;
  readonly registrarUrlSetting: string;
  readonly tlsCa: TlsFile | undefined;
  readonly tlsCert: TlsFile | undefined;
  readonly tlsKey: TlsFile | undefined;
  readonly statusTimeoutSeconds: number;
  readonly statusPollIntervalSeconds: number;
}

export interface ParseDriverInfoOptions {
  /** True when an agent locator can supply `keylime_agent_uuid` later, so its absence is not an error. */
  readonly locatorAvailable: boolean;
}

/**
 * Checks and normalises the keylime driver's `driver_info` against the `keylime` config section — no
 * network, no file access. Every missing field is reported at once (`MissingParameterValue`): a policy
 * source (`keylime_allowlist` or `keylime_runtime_policy`) with its checksum, the agent uuid (unless a
 * locator can supply it), and the verifier and registrar URLs and the client certificate and key when
 * the config has none. Then the first unusable value is reported (`InvalidParameterValue`).
 */
export function parseKeylimeDriverInfo(
  driverInfo: DriverInfo,
  settings: KeylimeSettings,
  options: ParseDriverInfoOptions,
): KeylimeNodeSettings {
  const fields = checkFields(driverInfo);
  const missing = missingFields(fields, settings, options);
  if (missing.length > 0) {
    throw new MissingParameterValue(missing);
  }
  if (fields.keylime_allowlist !== undefined && fields.keylime_runtime_policy !== undefined) {
    throw new InvalidParameterValue('driver_info.keylime_runtime_policy', 'give either keylime_allowlist or keylime_runtime_policy, not both');
  }
  for (const [document, checksum] of [
    // A checksum of the policy format not given: the operator may believe it pins a document it does not.
    ['keylime_allowlist', 'keylime_allowlist_checksum'],
    ['keylime_runtime_policy', 'keylime_runtime_policy_checksum'],
    ['keylime_excludelist', 'keylime_excludelist_checksum'],
    ['keylime_mb_refstate', 'keylime_mb_refstate_checksum'],
  ] as const) {
    if (fields[checksum] !== undefined && fields[document] === undefined) {
      throw new InvalidParameterValue(`driver_info.${checksum}`, `is set but ${document} is not`);
    }
  }
  const policyField = fields.keylime_allowlist !== undefined ? 'keylime_allowlist' : 'keylime_runtime_policy';
  const format: 'allowlist' | 'runtime-policy' = policyField === 'keylime_allowlist' ? 'allowlist' : 'runtime-policy';
  const tpmPolicyJson = parseTpmPolicyField(fields.keylime_tpm_policy);
  const tlsCa = tlsFile(fields.keylime_tls_ca, 'keylime_tls_ca', settings.tlsCaCert, 'tlsCaCert');
  const verifierUrl = serviceUrl(fields.keylime_verifier_url, 'keylime_verifier_url', settings.verifierUrl, 'verifierUrl', tlsCa);
  const registrarUrl = serviceUrl(fields.keylime_registrar_url, 'keylime_registrar_url', settings.registrarUrl, 'registrarUrl', tlsCa);
  return Object.freeze({
    policy: {
      format,
      source: parseDocumentSource(policyField, fields[policyField] as string),
      checksum: (fields[`${policyField}_checksum`] as string).toLowerCase(),
    },
    excludelist: optionalDocument(fields, 'keylime_excludelist', fields.keylime_excludelist_checksum),
    mbRefstate: optionalDocument(fields, 'keylime_mb_refstate', fields.keylime_mb_refstate_checksum),
    tpmPolicy: parseTpmPolicy(tpmPolicyJson, 'driver_info.keylime_tpm_policy'),
    tpmPolicyJson,
    agent:
      fields.keylime_agent_mode === 'push'
        ? { uuid: fields.keylime_agent_uuid, address: undefined, port: undefined }
        : { uuid: fields.keylime_agent_uuid, address: fields.keylime_agent_address, port: fields.keylime_agent_port },
    agentMode: fields.keylime_agent_mode ?? 'pull',
    verifierUrl,
    registrarUrl,
    verifierUrlSetting: urlSetting(fields.keylime_verifier_url, 'keylime_verifier_url', 'verifierUrl'),
    registrarUrlSetting: urlSetting(fields.keylime_registrar_url, 'keylime_registrar_url', 'registrarUrl'),
    tlsCa,
    tlsCert: tlsFile(fields.keylime_tls_cert, 'keylime_tls_cert', settings.tlsClientCert, 'tlsClientCert'),
    tlsKey: tlsFile(fields.keylime_tls_key, 'keylime_tls_key', settings.tlsClientKey, 'tlsClientKey'),
    statusTimeoutSeconds: settings.statusTimeoutSeconds,
    statusPollIntervalSeconds: settings.statusPollIntervalSeconds,
  });
}

/**
 * A service URL from `driver_info` or the config (one of them is set: `missingFields` checked). With a
 * CA file it must be https: on plain http the CA and the client certificate were dropped silently.
 */
function serviceUrl(own: string | undefined, field: string, fallback: string | undefined, setting: string, tlsCa: TlsFile | undefined): string {
  const url = (own ?? fallback) as string;
  if (tlsCa !== undefined && isPlainHttp(url)) {
    throw new InvalidParameterValue(urlSetting(own, field, setting), `is http:// but ${tlsCa.setting} is set: use https:// (plain http uses neither the CA nor the client certificate)`);
  }
  return url;
}

/** The name of the setting a service URL came from: the node's `driver_info` field, else the config's. */
function urlSetting(own: string | undefined, field: string, setting: string): string {
  return own === undefined ? `keylime.${setting}` : `driver_info.${field}`;
}

/** The fields of this driver, type-checked; absent, `null` and `""` all count as absent. */
function checkFields(driverInfo: DriverInfo): KeylimeDriverInfoFields {
  const known = Object.keys({ ...REQUIRED_PROPERTIES, ...OPTIONAL_PROPERTIES });
  // Other interfaces' keys are theirs; a keylime_ key this driver does not know is a typo that would
  // silently drop a setting.
  const unknown = Object.keys(driverInfo).find((key) => key.startsWith('keylime_') && !known.includes(key));
  if (unknown !== undefined) {
    const near = nearestName(unknown, known);
    throw new InvalidParameterValue(`driver_info.${unknown}`, `is not a field of the keylime driver (${near === undefined ? '' : `did you mean ${near}? `}see getProperties)`);
  }
  const plain: Record<string, unknown> = {};
  for (const key of known) {
    const value = driverInfo[key];
    if (value === undefined || value === null || value === '') {
      continue;
    }
    // Ironic keeps driver_info values as strings as often as not: a decimal port string is a port.
    plain[key] = key === 'keylime_agent_port' && typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  }
  const fields = plainToInstance(KeylimeDriverInfoFields, plain);
  const [first] = validateSync(fields, { forbidUnknownValues: true });
  if (first !== undefined) {
    // A wrong type explains more than a length rule also failing on it.
    const constraints = first.constraints ?? {};
    const message = constraints['isString'] ?? Object.values(constraints)[0] ?? 'is invalid';
    const own = `${first.property} `;
    throw new InvalidParameterValue(`driver_info.${first.property}`, message.startsWith(own) ? message.slice(own.length) : message);
  }
  for (const field of ['keylime_verifier_url', 'keylime_registrar_url'] as const) {
    const text = fields[field];
    if (text === undefined) continue;
    // isURL takes some URLs the clients' WHATWG parser refuses (`https://xn--a`, an IPv6 zone id):
    // `new URL` then threw a bare TypeError out of `validate` and every hook.
    const url = URL.canParse(text) ? new URL(text) : undefined;
    if (url === undefined) {
      throw new InvalidParameterValue(`driver_info.${field}`, 'must be an http(s) URL');
    }
    if (url.username !== '' || url.password !== '') {
      throw new InvalidParameterValue(`driver_info.${field}`, 'must not carry credentials in the URL');
    }
    // The clients keep only origin and path: a query or fragment would be dropped without a word.
    if (url.search !== '' || url.hash !== '') {
      throw new InvalidParameterValue(`driver_info.${field}`, 'must not carry a query or fragment (neither is sent)');
    }
  }
  for (const field of ['keylime_tls_ca', 'keylime_tls_cert', 'keylime_tls_key'] as const) {
    const file = fields[field];
    // A relative path would depend on the orchestrator's working directory.
    if (file !== undefined && !isAbsolute(file)) {
      throw new InvalidParameterValue(`driver_info.${field}`, `must be an absolute file path, got "${file}"`);
    }
  }
  return fields;
}

function missingFields(fields: KeylimeDriverInfoFields, settings: KeylimeSettings, options: ParseDriverInfoOptions): string[] {
  const missing: string[] = [];
  if (fields.keylime_runtime_policy === undefined) {
    if (fields.keylime_allowlist === undefined) {
      missing.push('keylime_allowlist');
    }
    if (fields.keylime_allowlist_checksum === undefined) {
      missing.push('keylime_allowlist_checksum');
    }
  } else if (fields.keylime_runtime_policy_checksum === undefined) {
    missing.push('keylime_runtime_policy_checksum');
  }
  if (fields.keylime_agent_uuid === undefined && !options.locatorAvailable) {
    missing.push('keylime_agent_uuid');
  }
  if (fields.keylime_verifier_url === undefined && settings.verifierUrl === undefined) {
    missing.push('keylime_verifier_url');
  }
  if (fields.keylime_registrar_url === undefined && settings.registrarUrl === undefined) {
    missing.push('keylime_registrar_url');
  }
  // Agents accept only mTLS clients (spec §0.3): the identity quote needs a client certificate.
  if (fields.keylime_tls_cert === undefined && settings.tlsClientCert === undefined) {
    missing.push('keylime_tls_cert');
  }
  if (fields.keylime_tls_key === undefined && settings.tlsClientKey === undefined) {
    missing.push('keylime_tls_key');
  }
  return missing;
}

function optionalDocument(
  fields: KeylimeDriverInfoFields,
  field: 'keylime_excludelist' | 'keylime_mb_refstate',
  checksum: string | undefined,
): CheckedDocument | undefined {
  const text = fields[field];
  if (text === undefined) {
    return undefined;
  }
  const source = parseDocumentSource(field, text);
  // A file is the operator's own; a download is only trusted through its digest.
  if (source.kind === 'url' && checksum === undefined) {
    throw new InvalidParameterValue(`driver_info.${field}`, `an http(s) URL needs ${field}_checksum (its sha256)`);
  }
  return { source, checksum: checksum?.toLowerCase() };
}

/** `keylime_tpm_policy` as a PCR → digests object; `mask` is dropped (the driver computes it). */
function parseTpmPolicyField(text: string | undefined): Record<string, readonly string[]> {
  if (text === undefined) {
    return {};
  }
  const parsed = parseTpmPolicy(text, 'driver_info.keylime_tpm_policy');
  return Object.fromEntries([...parsed.pcrs].sort(([a], [b]) => a - b).map(([pcr, values]) => [String(pcr), values]));
}

function tlsFile(fromNode: string | undefined, field: string, fromConfig: string | undefined, configField: string): TlsFile | undefined {
  if (fromNode !== undefined) {
    return { path: fromNode, setting: `driver_info.${field}` };
  }
  return fromConfig === undefined ? undefined : { path: fromConfig, setting: `keylime.${configField}` };
}
