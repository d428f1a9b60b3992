import { InvalidConfig } from '../../interfaces/errors.js';

/**
 * Keylime API version routing (spec §0.2). URLs start with `/v<major>.<minor>/`; registrar and verifier
 * also accept `/v<major>/` meaning the latest minor of that major (`keylime/api_version.py`,
 * `web/base/server.py`). A version the service does not serve is a 400 whose status text differs per
 * implementation: "API Version not supported" (Python verifier/registrar) and
 * "API version not supported: v<x>" (Rust agent, `api.rs: api_default`).
 */
export interface ApiVersionPolicy {
  /** Versions served, e.g. `['2.1', …, '2.6']`. */
  readonly supported: readonly string[];
  /** Whether `/v2/…` is accepted as the latest 2.x. */
  readonly majorAliases: boolean;
  /** Status text of the 400 for an unsupported version; `segment` is the URL segment as sent, e.g. `v1.0`. */
  readonly unsupportedStatus: (segment: string) => string;
}

/** One URL prefix a versioned route is registered under, and the version it means. */
export interface VersionPrefix {
  readonly prefix: string;
  readonly version: string;
}

/** Versions the Python registrar and verifier serve in v2 mode (`api_version.py: VERSIONS` without 3.0). */
export const SERVER_API_VERSIONS: readonly string[] = ['1.0', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6'];
/** Versions the Rust pull agent serves (`SUPPORTED_API_VERSIONS`). */
export const AGENT_API_VERSIONS: readonly string[] = ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'];

/** Registrar/verifier behaviour: major aliases, status "API Version not supported". */
export function serverApiVersionPolicy(supported: readonly string[] = SERVER_API_VERSIONS): ApiVersionPolicy {
  return { supported, majorAliases: true, unsupportedStatus: () => 'API Version not supported' };
}

/** Rust pull-agent behaviour: no major aliases, status "API version not supported: v<x>". */
export function agentApiVersionPolicy(supported: readonly string[] = AGENT_API_VERSIONS): ApiVersionPolicy {
  return { supported, majorAliases: false, unsupportedStatus: (segment) => `API version not supported: ${segment}` };
}

const VERSION = /^(\d{1,3})\.(\d{1,3})$/;
const URL_VERSION_SEGMENT = /^\/(v\d{1,3}(?:\.\d{1,3})?)(?:[/?#]|$)/;

/** `{major, minor}` of `"2.6"`, or undefined when the text is not `<digits>.<digits>`. */
export function parseApiVersion(text: string): { major: number; minor: number } | undefined {
  const match = VERSION.exec(text);
  return match === null ? undefined : { major: Number(match[1]), minor: Number(match[2]) };
}

/** Negative, zero or positive as `a` is lower than, equal to or higher than `b`. Both must parse. */
export function compareApiVersions(a: string, b: string): number {
  const x = mustParse(a);
  const y = mustParse(b);
  return x.major - y.major || x.minor - y.minor;
}

/** The highest version in both lists (`api_version.py: negotiate_version`), or undefined. */
export function negotiateApiVersion(remote: readonly string[], local: readonly string[]): string | undefined {
  const common = remote.filter((v) => parseApiVersion(v) !== undefined && local.includes(v));
  return common.sort(compareApiVersions).at(-1);
}

/**
 * The versions a `GET /version` reply names (client side): `supported_versions` when it is a list (the
 * Python registrar and verifier always; the Rust agent from API 2.5), else the single
 * `current_version` (server) or `supported_version` (agent). Undefined when it names none.
 */
export function versionsInReply(results: unknown): string[] | undefined {
  if (results === null || typeof results !== 'object') {
    return undefined;
  }
  const record = results as Record<string, unknown>;
  const list = record['supported_versions'];
  if (Array.isArray(list) && list.length > 0 && list.every((v): v is string => typeof v === 'string')) {
    return list;
  }
  const single = record['current_version'] ?? record['supported_version'];
  return typeof single === 'string' ? [single] : undefined;
}

/**
 * Whether a refusal says the URL's API version is not served: HTTP 400 whose status text holds
 * "API version not supported", in any case (the Python services' "API Version not supported", the
 * Rust agent's "API version not supported: v<x>").
 */
export function isUnsupportedVersionReply(httpStatus: number, statusText: string): boolean {
  return httpStatus === 400 && /api version not supported/i.test(statusText);
}

/** Checks a policy once at startup; throws `InvalidConfig` on an empty, malformed or duplicated list. */
export function checkApiVersionPolicy(policy: ApiVersionPolicy): void {
  if (policy.supported.length === 0) {
    throw new InvalidConfig('apiVersions.supported', 'must name at least one version');
  }
  for (const v of policy.supported) {
    if (parseApiVersion(v) === undefined) {
      throw new InvalidConfig('apiVersions.supported', `${JSON.stringify(v)} is not <major>.<minor>`);
    }
  }
  if (new Set(policy.supported).size !== policy.supported.length) {
    throw new InvalidConfig('apiVersions.supported', 'lists a version twice');
  }
}

/** The highest supported version. */
export function currentApiVersion(policy: ApiVersionPolicy): string {
  const latest = [...policy.supported].sort(compareApiVersions).at(-1);
  if (latest === undefined) {
    throw new InvalidConfig('apiVersions.supported', 'must name at least one version');
  }
  return latest;
}

/**
 * The prefixes a route served from `minVersion` up to `maxVersion` (inclusive, both optional) is
 * registered under: `/v<x.y>` per supported version in range, plus `/v<major>` for the latest minor of
 * each major when the policy has aliases and that latest minor is in range.
 */
export function versionPrefixes(policy: ApiVersionPolicy, minVersion?: string, maxVersion?: string): VersionPrefix[] {
  const inRange = (v: string): boolean =>
    (minVersion === undefined || compareApiVersions(v, minVersion) >= 0) &&
    (maxVersion === undefined || compareApiVersions(v, maxVersion) <= 0);
  const sorted = [...policy.supported].sort(compareApiVersions);
  const prefixes: VersionPrefix[] = sorted.filter(inRange).map((version) => ({ prefix: `/v${version}`, version }));
  if (policy.majorAliases) {
    const latestPerMajor = new Map<number, string>();
    for (const v of sorted) {
      latestPerMajor.set(mustParse(v).major, v);
    }
    for (const [major, version] of latestPerMajor) {
      if (inRange(version)) {
        prefixes.push({ prefix: `/v${major}`, version });
      }
    }
  }
  return prefixes;
}

/**
 * For a URL no route matched: the version segment (`v1.9`) when the URL starts with one the policy
 * does not serve, else undefined (then the URL is simply unknown: 404).
 */
export function unsupportedVersionSegment(policy: ApiVersionPolicy, url: string): string | undefined {
  const segment = URL_VERSION_SEGMENT.exec(url)?.[1];
  if (segment === undefined) {
    return undefined;
  }
  const served = versionPrefixes(policy).some((p) => p.prefix === `/${segment}`);
  return served ? undefined : segment;
}

/** `GET /version` results of the registrar and verifier: `{current_version, supported_versions}`. */
export function serverVersionResults(policy: ApiVersionPolicy): { current_version: string; supported_versions: string[] } {
  return { current_version: currentApiVersion(policy), supported_versions: [...policy.supported].sort(compareApiVersions) };
}

/** `GET /version` results of the pull agent: `{supported_version, supported_versions}`. */
export function agentVersionResults(policy: ApiVersionPolicy): { supported_version: string; supported_versions: string[] } {
  return { supported_version: currentApiVersion(policy), supported_versions: [...policy.supported].sort(compareApiVersions) };
}

function mustParse(text: string): { major: number; minor: number } {
  const parsed = parseApiVersion(text);
  if (parsed === undefined) {
    throw new InvalidConfig('apiVersion', `${JSON.stringify(text)} is not <major>.<minor>`);
  }
  return parsed;
}
