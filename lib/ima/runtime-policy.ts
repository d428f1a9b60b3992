import { compileExcludes } from './exclude-matcher.js';
import { LOG_HASH_ALGORITHMS, type LogHashAlgorithm } from './hash-algorithms.js';
import { ImaKeyring } from './ima-keyring.js';
import { nameMap } from './internal/name-map.js';
import { normalisePolicyDigest } from './internal/policy-quirks.js';
import { parsePolicyJson } from './internal/policy-json.js';
import { RuntimePolicyError } from './internal/runtime-policy-error.js';

/**
 * Keylime's JSON runtime policy, format version 1 (`keylime/ima/ima.py`, `RUNTIME_POLICY_SCHEMA`).
 * Field names are Keylime's, so a policy written by `keylime_create_policy` loads unchanged and ours
 * loads into Keylime.
 */
export interface RuntimePolicy {
  meta: { version: number; generator: number; timestamp?: string };
  release: number;
  /** Path (or `boot_aggregate`) → accepted lowercase hex digests. */
  digests: Record<string, string[]>;
  /** Python regular expressions; a path matching one at its start is not checked. */
  excludes: string[];
  /** Keyring name (`.ima`, …) → accepted digests of keys loaded onto it (`ima-buf` entries). */
  keyrings: Record<string, string[]>;
  ima: { ignored_keyrings: string[]; log_hash_alg: LogHashAlgorithm; dm_policy: null };
  /** `ima-buf` name → accepted digests of measured buffers that are not keys. */
  'ima-buf': Record<string, string[]>;
  /** An IMA keyring as JSON text (`{"pubkeys": [...], "keyids": [...]}`), or "". */
  'verification-keys': string;
}

/** `meta.version` this release reads and writes (`RUNTIME_POLICY_CURRENT_VERSION`). */
export const RUNTIME_POLICY_VERSION = 1;

/** `meta.generator` values (`RUNTIME_POLICY_GENERATOR`). */
export const POLICY_GENERATOR = { Unknown: 0, EmptyAllowList: 1, CompatibleAllowList: 2, LegacyAllowList: 3 } as const;

/** Keylime's `EMPTY_RUNTIME_POLICY`: accepts nothing but excluded paths. */
export function emptyRuntimePolicy(): RuntimePolicy {
  return {
    meta: { version: RUNTIME_POLICY_VERSION, generator: POLICY_GENERATOR.EmptyAllowList },
    release: 0,
    digests: nameMap(),
    excludes: [],
    keyrings: nameMap(),
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': nameMap(),
    'verification-keys': '',
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new RuntimePolicyError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

function stringList(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) {
    throw new RuntimePolicyError(field, 'must be a list of strings');
  }
  return value.map((item, index) => {
    if (typeof item !== 'string') {
      throw new RuntimePolicyError(`${field}[${index}]`, 'must be a string');
    }
    return item;
  });
}

/** A `digests-object`: name → non-empty list of lowercase hex digests of 40 to 128 digits. */
function digestMap(value: unknown, field: string): Record<string, string[]> {
  if (!isObject(value)) {
    throw new RuntimePolicyError(field, 'must be an object mapping names to lists of digests');
  }
  const out = nameMap<string[]>();
  for (const [name, list] of Object.entries(value)) {
    const where = `${field}[${JSON.stringify(name)}]`;
    const digests = stringList(list, where);
    if (digests.length === 0) {
      throw new RuntimePolicyError(where, 'must list at least one digest');
    }
    out[name] = digests.map((digest, index) => {
      const normalised = normalisePolicyDigest(digest);
      if (normalised === undefined) {
        throw new RuntimePolicyError(`${where}[${index}]`, `"${digest}" is not 40 to 128 lowercase hex digits`);
      }
      return normalised;
    });
  }
  return out;
}

function parseMeta(value: unknown): RuntimePolicy['meta'] {
  if (!isObject(value)) {
    throw new RuntimePolicyError('meta', 'must be an object with "version"');
  }
  const version = integer(value['version'], 'meta.version', 0, RUNTIME_POLICY_VERSION);
  const generator =
    value['generator'] === undefined ? POLICY_GENERATOR.Unknown : integer(value['generator'], 'meta.generator', 0, 3);
  const meta: RuntimePolicy['meta'] = { version, generator };
  if (value['timestamp'] !== undefined) {
    if (typeof value['timestamp'] !== 'string') {
      throw new RuntimePolicyError('meta.timestamp', 'must be a string');
    }
    meta.timestamp = value['timestamp'];
  }
  return meta;
}

function parseImaSection(value: unknown): RuntimePolicy['ima'] {
  if (value === undefined) {
    return emptyRuntimePolicy().ima;
  }
  if (!isObject(value)) {
    throw new RuntimePolicyError('ima', 'must be an object');
  }
  const alg = value['log_hash_alg'] ?? 'sha1';
  if (typeof alg !== 'string' || !(LOG_HASH_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new RuntimePolicyError('ima.log_hash_alg', `must be one of ${LOG_HASH_ALGORITHMS.join(', ')}, got ${JSON.stringify(alg)}`);
  }
  if (value['dm_policy'] !== undefined && value['dm_policy'] !== null) {
    throw new RuntimePolicyError('ima.dm_policy', 'device-mapper policies are not supported; it must be null');
  }
  return {
    ignored_keyrings: value['ignored_keyrings'] === undefined ? [] : stringList(value['ignored_keyrings'], 'ima.ignored_keyrings'),
    log_hash_alg: alg as LogHashAlgorithm,
    dm_policy: null,
  };
}

/**
 * Parses and validates a runtime policy (JSON text or an already parsed value). Every field is
 * checked against Keylime's schema; excludes must compile and `verification-keys` must load.
 * Fields Keylime's schema requires but its own older policies and test data omit get the empty
 * policy's value: `release` 0, `meta.generator` 0 (Unknown), empty `excludes`, `keyrings`,
 * `ima-buf`, `ima` and `verification-keys`. `meta.version` and `digests` are required.
 *
 * @throws RuntimePolicyError naming the first field that is wrong.
 */
export function parseRuntimePolicy(input: string | unknown): RuntimePolicy {
  let value = input;
  if (typeof input === 'string') {
    value = parsePolicyJson(input, '(document)');
  }
  if (!isObject(value)) {
    throw new RuntimePolicyError('(document)', 'must be a JSON object');
  }
  if (value['digests'] === undefined && value['hashes'] !== undefined) {
    throw new RuntimePolicyError('hashes', 'legacy JSON allowlists are not supported; convert it with keylime_convert_runtime_policy');
  }
  if (value['digests'] === undefined) {
    throw new RuntimePolicyError('digests', 'is required');
  }
  const verificationKeys = value['verification-keys'] ?? '';
  if (typeof verificationKeys !== 'string') {
    throw new RuntimePolicyError('verification-keys', 'must be a string holding an IMA keyring as JSON, or ""');
  }
  const policy: RuntimePolicy = {
    meta: parseMeta(value['meta']),
    release: value['release'] === undefined ? 0 : integer(value['release'], 'release', 0, Number.MAX_SAFE_INTEGER),
    digests: digestMap(value['digests'], 'digests'),
    excludes: value['excludes'] === undefined ? [] : stringList(value['excludes'], 'excludes'),
    keyrings: value['keyrings'] === undefined ? nameMap() : digestMap(value['keyrings'], 'keyrings'),
    ima: parseImaSection(value['ima']),
    'ima-buf': value['ima-buf'] === undefined ? nameMap() : digestMap(value['ima-buf'], 'ima-buf'),
    'verification-keys': verificationKeys,
  };
  compileExcludes(policy.excludes);
  if (verificationKeys !== '') {
    ImaKeyring.fromJson(verificationKeys, 'verification-keys');
  }
  return policy;
}
