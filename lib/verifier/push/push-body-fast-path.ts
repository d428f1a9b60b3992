import { hasOnlyKeys, isAbsentOr, isAgentIdString, isBase64OfAtMost, isOneOf, isPlainObject, isStringOfAtMost, passesJsonGuard, type PlainObject } from '../../http/fast-path-checks.js';
import { isBootTime } from './boot-time.js';
import type { AttestationIndexParams, CapabilitiesBody, EvidenceBody, PushAgentParams } from './push-dtos.js';
import { EVIDENCE_CLASSES, EVIDENCE_TYPES, MAX_LOG_TEXT, MAX_TPM_B64, SHORT } from './push-dtos.js';

/**
 * The fast path for what every push attestation sends: phase 1's capabilities, phase 2's evidence and
 * the routes' path parameters. Running them through class-transformer and class-validator took about
 * 12 % of the push verifier's busy time (profile of `npm run bench -- verifier --push`, 100 agents;
 * class-validator scans its metadata for every nested object, and `MaxLength` runs a regular
 * expression over the whole IMA text).
 *
 * Each function is a SUFFICIENT condition for its DTO (`push-dtos.ts`, which stays the definition): it
 * returns the value, unchanged and typed, only when the DTO accepts it as it is — exactly the DTO's
 * keys, the same types and bounds, string lengths counted in UTF-16 units (never fewer than
 * class-validator's count) — and undefined for anything else, even what the DTO would accept (a null
 * optional field, a surrogate pair near a length bound…). The caller then runs `validateDto`, so every
 * refusal keeps class-validator's status and message. `test/verifier/push-body-fast-path.test.ts`
 * checks, over every single-field mutation of the agent's bodies, that this never accepts what the DTO
 * refuses.
 */

/** `POST /v3.0/agents/{id}/attestations`: the body when `CapabilitiesBody` certainly accepts it as is. */
export function fastCapabilitiesBody(value: unknown): CapabilitiesBody | undefined {
  // `meta` objects are taken as they are: only the guard keeps a prototype key or deep nesting in them from the fast path.
  if (!passesJsonGuard(value)) return undefined;
  return document(
    value,
    CAPABILITIES_ATTRIBUTES,
    (attributes) =>
      list(attributes['evidence_supported'], 8, (item) => hasOnlyKeys(item, EVIDENCE_SUPPORTED, ['evidence_class', 'evidence_type', 'capabilities']) && evidenceKind(item) && capabilities(item['capabilities'])) &&
      isAbsentOr(attributes['system_info'], systemInfo),
  ) as CapabilitiesBody | undefined;
}

/** `PATCH /v3.0/agents/{id}/attestations/{index}`: the body when `EvidenceBody` certainly accepts it as is. */
export function fastEvidenceBody(value: unknown): EvidenceBody | undefined {
  if (!passesJsonGuard(value)) return undefined;
  return document(value, EVIDENCE_ATTRIBUTES, (attributes) =>
    list(attributes['evidence_collected'], 8, (item) => hasOnlyKeys(item, EVIDENCE_COLLECTED, ['evidence_class', 'evidence_type', 'data']) && evidenceKind(item) && collected(item['data'])),
  ) as EvidenceBody | undefined;
}

/** `{agent_id}` when `PushAgentParams` certainly accepts it. */
export function fastAgentParams(value: unknown): PushAgentParams | undefined {
  return hasOnlyKeys(value, AGENT_PARAMS, ['agent_id']) && isAgentIdString(value['agent_id']) ? (value as unknown as PushAgentParams) : undefined;
}

/** `{agent_id, index}` when `AttestationIndexParams` certainly accepts it. */
export function fastIndexParams(value: unknown): AttestationIndexParams | undefined {
  return hasOnlyKeys(value, INDEX_PARAMS, ['agent_id', 'index']) && isAgentIdString(value['agent_id']) && isStringOfAtMost(value['index'], 12) ? (value as unknown as AttestationIndexParams) : undefined;
}

const CAPABILITIES_ATTRIBUTES = new Set(['evidence_supported', 'system_info']);
const EVIDENCE_ATTRIBUTES = new Set(['evidence_collected']);
const EVIDENCE_SUPPORTED = new Set(['evidence_class', 'evidence_type', 'capabilities']);
const EVIDENCE_COLLECTED = new Set(['evidence_class', 'evidence_type', 'data']);
const SYSTEM_INFO = new Set(['boot_time']);
const CAPABILITIES = new Set([
  'component_version',
  'signature_schemes',
  'hash_algorithms',
  'available_subjects',
  'certification_keys',
  'evidence_version',
  'entry_count',
  'supports_partial_access',
  'appendable',
  'formats',
  'meta',
]);
const CERTIFICATION_KEY = new Set([
  'key_class',
  'key_algorithm',
  'key_size',
  'server_identifier',
  'local_identifier',
  'allowable_signature_schemes',
  'allowable_hash_algorithms',
  'public',
]);
const COLLECTED_DATA = new Set(['message', 'signature', 'subject_data', 'entries', 'entry_count', 'meta']);
const AGENT_PARAMS = new Set(['agent_id']);
const INDEX_PARAMS = new Set(['agent_id', 'index']);
const EVIDENCE_CLASS_SET: ReadonlySet<string> = new Set(EVIDENCE_CLASSES);
const EVIDENCE_TYPE_SET: ReadonlySet<string> = new Set(EVIDENCE_TYPES);

/** `{data: {type: "attestation", attributes}}` with `attributes` holding only `allowed` keys and passing `check`. */
function document(value: unknown, allowed: ReadonlySet<string>, check: (attributes: PlainObject) => boolean): unknown {
  if (!hasOnlyKeys(value, DOCUMENT, ['data'])) return undefined;
  const data = value['data'];
  if (!hasOnlyKeys(data, DATA, ['type', 'attributes']) || data['type'] !== 'attestation') return undefined;
  const attributes = data['attributes'];
  return hasOnlyKeys(attributes, allowed, []) && check(attributes) ? value : undefined;
}
const DOCUMENT = new Set(['data']);
const DATA = new Set(['type', 'attributes']);

function systemInfo(value: unknown): boolean {
  return hasOnlyKeys(value, SYSTEM_INFO, []) && isAbsentOr(value['boot_time'], isBootTime);
}

function capabilities(value: unknown): boolean {
  return (
    hasOnlyKeys(value, CAPABILITIES, []) &&
    isAbsentOr(value['component_version'], (v) => isStringOfAtMost(v, SHORT)) &&
    isAbsentOr(value['signature_schemes'], shortList) &&
    isAbsentOr(value['hash_algorithms'], shortList) &&
    isAbsentOr(value['available_subjects'], subjectMap) &&
    isAbsentOr(value['certification_keys'], (v) => list(v, 8, certificationKey)) &&
    isAbsentOr(value['evidence_version'], (v) => isStringOfAtMost(v, SHORT)) &&
    isAbsentOr(value['entry_count'], (v) => integer(v, 0, 100_000_000)) &&
    isAbsentOr(value['supports_partial_access'], boolean) &&
    isAbsentOr(value['appendable'], boolean) &&
    isAbsentOr(value['formats'], shortList) &&
    isAbsentOr(value['meta'], isPlainObject)
  );
}

function certificationKey(value: unknown): boolean {
  return (
    hasOnlyKeys(value, CERTIFICATION_KEY, ['key_algorithm']) &&
    isAbsentOr(value['key_class'], (v) => isStringOfAtMost(v, SHORT)) &&
    isStringOfAtMost(value['key_algorithm'], SHORT) &&
    isAbsentOr(value['key_size'], (v) => integer(v, 0, 65536)) &&
    isAbsentOr(value['server_identifier'], (v) => isStringOfAtMost(v, SHORT)) &&
    isAbsentOr(value['local_identifier'], (v) => isStringOfAtMost(v, 256)) &&
    isAbsentOr(value['allowable_signature_schemes'], shortList) &&
    isAbsentOr(value['allowable_hash_algorithms'], shortList) &&
    isAbsentOr(value['public'], (v) => isBase64OfAtMost(v, MAX_TPM_B64))
  );
}

function collected(value: unknown): boolean {
  return (
    hasOnlyKeys(value, COLLECTED_DATA, []) &&
    isAbsentOr(value['message'], (v) => isBase64OfAtMost(v, MAX_TPM_B64)) &&
    isAbsentOr(value['signature'], (v) => isBase64OfAtMost(v, MAX_TPM_B64)) &&
    isAbsentOr(value['subject_data'], (v) => isBase64OfAtMost(v, MAX_TPM_B64)) &&
    isAbsentOr(value['entries'], (v) => isStringOfAtMost(v, MAX_LOG_TEXT)) &&
    isAbsentOr(value['entry_count'], (v) => integer(v, 0, 100_000_000)) &&
    isAbsentOr(value['meta'], isPlainObject)
  );
}

function evidenceKind(item: PlainObject): boolean {
  return isOneOf(item['evidence_class'], EVIDENCE_CLASS_SET) && isOneOf(item['evidence_type'], EVIDENCE_TYPE_SET);
}

function list(value: unknown, max: number, each: (item: PlainObject) => boolean): boolean {
  return Array.isArray(value) && value.length <= max && value.every((item: unknown) => isPlainObject(item) && each(item));
}

function shortList(value: unknown): boolean {
  return Array.isArray(value) && value.length <= 16 && value.every((item: unknown) => isStringOfAtMost(item, SHORT));
}

/** As the DTO's `IsSubjectMap`: at most 16 banks of at most 24 PCR numbers 0–23. */
function subjectMap(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const banks = Object.entries(value);
  return (
    banks.length <= 16 &&
    banks.every(([bank, pcrs]) => bank.length <= 16 && Array.isArray(pcrs) && pcrs.length <= 24 && pcrs.every((p: unknown) => integer(p, 0, 23)))
  );
}

function integer(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function boolean(value: unknown): boolean {
  return typeof value === 'boolean';
}

