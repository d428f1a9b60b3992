import { parseExcludeList } from '../exclude-matcher.js';
import { appendTo, nameMap } from './name-map.js';
import { normalisePolicyDigest } from './policy-quirks.js';
import { RuntimePolicyError } from './runtime-policy-error.js';
import { emptyRuntimePolicy, POLICY_GENERATOR, type RuntimePolicy } from '../runtime-policy.js';

/**
 * Legacy flat allowlists: one `<hex digest><whitespace><path>` per line, as `sha256sum` prints
 * them. A path `%keyring:<name>` lists the digest of a key allowed onto keyring `<name>`. Blank
 * lines are skipped. Spaces inside paths become `_`, as IMA writes them in the log (Keylime
 * `create_runtime_policy.process_flat_allowlist`).
 */
export interface FlatAllowlist {
  digests: Record<string, string[]>;
  keyrings: Record<string, string[]>;
}

const KEYRING_PREFIX = '%keyring:';

/** Longest part of a refused line an error quotes. */
const EXCERPT_CHARS = 80;

/**
 * A refused line as an error quotes it: JSON-escaped (NULs and terminal escapes shown, not written)
 * and cut at `EXCERPT_CHARS` — a 99 MiB file of one line was echoed whole into the tenant's message,
 * and the text may come unauthenticated (`POST /verify/evidence`) into a reply.
 */
function lineExcerpt(line: string): string {
  return JSON.stringify(line.length > EXCERPT_CHARS ? `${line.slice(0, EXCERPT_CHARS)}…` : line);
}

/**
 * Parses a flat allowlist.
 *
 * @throws RuntimePolicyError naming the first line that is not `<digest> <path>`.
 */
export function parseFlatAllowlist(text: string): FlatAllowlist {
  const allowlist: FlatAllowlist = { digests: nameMap(), keyrings: nameMap() };
  // Repeated lines are dropped through this set, not by searching the path's list: the text may come
  // unauthenticated (`POST /verify/evidence`), and 40,000 digests of one path cost 60 s searched.
  const seen = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0) {
      return;
    }
    const match = /^(\S+)\s+(.+)$/.exec(line);
    const digest = match === null ? undefined : normalisePolicyDigest(match[1] ?? '');
    if (match === null || digest === undefined) {
      throw new RuntimePolicyError(`allowlist line ${index + 1}`, `expected "<lowercase hex digest> <path>", got ${lineExcerpt(line)}`);
    }
    const path = (match[2] ?? '').replaceAll(' ', '_');
    const entry = `${digest} ${path}`;
    if (seen.has(entry)) {
      return;
    }
    seen.add(entry);
    if (path.startsWith(KEYRING_PREFIX)) {
      appendTo(allowlist.keyrings, path.slice(KEYRING_PREFIX.length), digest);
    } else {
      appendTo(allowlist.digests, path, digest);
    }
  });
  return allowlist;
}

/** Keylime's timestamp format, Python `str(datetime.now())`: `2024-09-12 13:44:44.298873`. */
export function policyTimestamp(date: Date): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds() * 1000, 6)}`
  );
}

/**
 * Converts a flat allowlist (and optionally a legacy exclude list) into a runtime policy, as
 * Keylime's converter does: generator 3 (`LegacyAllowList`), `log_hash_alg` sha1, digests sorted.
 *
 * @throws RuntimePolicyError for a malformed allowlist line or an exclude rule that does not compile.
 */
export function allowlistToRuntimePolicy(allowlistText: string, excludeListText = '', now = new Date()): RuntimePolicy {
  const allowlist = parseFlatAllowlist(allowlistText);
  const policy = emptyRuntimePolicy();
  policy.meta = { version: policy.meta.version, generator: POLICY_GENERATOR.LegacyAllowList, timestamp: policyTimestamp(now) };
  policy.digests = sortedMap(allowlist.digests);
  policy.keyrings = sortedMap(allowlist.keyrings);
  policy.excludes = [...new Set(parseExcludeList(excludeListText))].sort();
  return policy;
}

/** A copy with every list sorted, as Keylime writes them. */
export function sortedMap(map: Record<string, string[]>): Record<string, string[]> {
  const out = nameMap<string[]>();
  for (const [name, list] of Object.entries(map)) {
    out[name] = [...new Set(list)].sort();
  }
  return out;
}
