import { isISO8601 } from 'class-validator';
import { isCanonicalBase64, isKeylimeAgentId } from '../../http/validators.js';
import type { AttestationIndexParams, CapabilitiesBody, EvidenceBody, PushAgentParams } from './push-dtos.js';
import { MAX_LOG_TEXT, MAX_TPM_B64, SHORT } from './push-dtos.js';

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
  return document(
    value,
    CAPABILITIES_ATTRIBUTES,
    (attributes) =>
      list(attributes['evidence_supported'], 8, (item) => has(item, EVIDENCE_SUPPORTED, ['evidence_class', 'evidence_type', 'capabilities']) && evidenceKind(item) && capabilities(item['capabilities'])) &&
      optional(attributes['system_info'], systemInfo),
  ) as CapabilitiesBody | undefined;
}

/** `PATCH /v3.0/agents/{id}/attestations/{index}`: the body when `EvidenceBody` certainly accepts it as is. */
export function fastEvidenceBody(value: unknown): EvidenceBody | undefined {
  return document(value, EVIDENCE_ATTRIBUTES, (attributes) =>
    list(attributes['evidence_collected'], 8, (item) => has(item, EVIDENCE_COLLECTED, ['evidence_class', 'evidence_type', 'data']) && evidenceKind(item) && collected(item['data'])),
  ) as EvidenceBody | undefined;
}

/** `{agent_id}` when `PushAgentParams` certainly accepts it. */
export function fastAgentParams(value: unknown): PushAgentParams | undefined {
  return has(value, AGENT_PARAMS, ['agent_id']) && agentId(value['agent_id']) ? (value as unknown as PushAgentParams) : undefined;
}

/** `{agent_id, index}` when `AttestationIndexParams` certainly accepts it. */
export function fastIndexParams(value: unknown): AttestationIndexParams | undefined {
  return has(value, INDEX_PARAMS, ['agent_id', 'index']) && agentId(value['agent_id']) && text(value['index'], 12) ? (value as unknown as AttestationIndexParams) : undefined;
}

type Plain = Record<string, unknown>;

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
const COLLECTED_DATA = new Set(['message', 'signature', 'subject_data', 'entries', 'entry_count']);
const AGENT_PARAMS = new Set(['agent_id']);
const INDEX_PARAMS = new Set(['agent_id', 'index']);
const EVIDENCE_CLASSES: readonly unknown[] = ['certification', 'log'];
const EVIDENCE_TYPES: readonly unknown[] = ['tpm_quote', 'uefi_log', 'ima_log'];

/** `{data: {type: "attestation", attributes}}` with `attributes` holding only `allowed` keys and passing `check`. */
function document(value: unknown, allowed: ReadonlySet<string>, check: (attributes: Plain) => boolean): unknown {
  if (!has(value, DOCUMENT, ['data'])) return undefined;
  const data = value['data'];
  if (!has(data, DATA, ['type', 'attributes']) || data['type'] !== 'attestation') return undefined;
  const attributes = data['attributes'];
  return has(attributes, allowed, []) && check(attributes) ? value : undefined;
}
const DOCUMENT = new Set(['data']);
const DATA = new Set(['type', 'attributes']);

function systemInfo(value: unknown): boolean {
  return has(value, SYSTEM_INFO, []) && optional(value['boot_time'], (v) => isISO8601(v, { strict: true }));
}

function capabilities(value: unknown): boolean {
  return (
    has(value, CAPABILITIES, []) &&
    optional(value['component_version'], (v) => text(v, SHORT)) &&
    optional(value['signature_schemes'], shortList) &&
    optional(value['hash_algorithms'], shortList) &&
    optional(value['available_subjects'], subjectMap) &&
    optional(value['certification_keys'], (v) => list(v, 8, certificationKey)) &&
    optional(value['evidence_version'], (v) => text(v, SHORT)) &&
    optional(value['entry_count'], (v) => integer(v, 0, 100_000_000)) &&
    optional(value['supports_partial_access'], boolean) &&
    optional(value['appendable'], boolean) &&
    optional(value['formats'], shortList)
  );
}

function certificationKey(value: unknown): boolean {
  return (
    has(value, CERTIFICATION_KEY, ['key_algorithm']) &&
    optional(value['key_class'], (v) => text(v, SHORT)) &&
    text(value['key_algorithm'], SHORT) &&
    optional(value['key_size'], (v) => integer(v, 0, 65536)) &&
    optional(value['server_identifier'], (v) => text(v, SHORT)) &&
    optional(value['local_identifier'], (v) => text(v, 256)) &&
    optional(value['allowable_signature_schemes'], shortList) &&
    optional(value['allowable_hash_algorithms'], shortList) &&
    optional(value['public'], (v) => base64(v, MAX_TPM_B64))
  );
}

function collected(value: unknown): boolean {
  return (
    has(value, COLLECTED_DATA, []) &&
    optional(value['message'], (v) => base64(v, MAX_TPM_B64)) &&
    optional(value['signature'], (v) => base64(v, MAX_TPM_B64)) &&
    optional(value['subject_data'], (v) => base64(v, MAX_TPM_B64)) &&
    optional(value['entries'], (v) => text(v, MAX_LOG_TEXT)) &&
    optional(value['entry_count'], (v) => integer(v, 0, 100_000_000))
  );
}

function evidenceKind(item: Plain): boolean {
  return EVIDENCE_CLASSES.includes(item['evidence_class']) && EVIDENCE_TYPES.includes(item['evidence_type']);
}

/** An object that is not an array (JSON bodies; the router's params object has no prototype). */
function isPlain(value: unknown): value is Plain {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A JSON object whose keys are all in `allowed` and which has every `required` key. */
function has(value: unknown, allowed: ReadonlySet<string>, required: readonly string[]): value is Plain {
  if (!isPlain(value)) return false;
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) return false;
  }
  return required.every((key) => (value as Plain)[key] !== undefined);
}

/** Absent, or present and passing `check` (a null goes to class-validator). */
function optional(value: unknown, check: (value: unknown) => boolean): boolean {
  return value === undefined || check(value);
}

function list(value: unknown, max: number, each: (item: Plain) => boolean): boolean {
  return Array.isArray(value) && value.length <= max && value.every((item: unknown) => isPlain(item) && each(item));
}

function shortList(value: unknown): boolean {
  return Array.isArray(value) && value.length <= 16 && value.every((item: unknown) => text(item, SHORT));
}

/** As the DTO's `IsSubjectMap`: at most 16 banks of at most 24 PCR numbers 0–23. */
function subjectMap(value: unknown): boolean {
  if (!isPlain(value)) return false;
  const banks = Object.entries(value);
  return (
    banks.length <= 16 &&
    banks.every(([bank, pcrs]) => bank.length <= 16 && Array.isArray(pcrs) && pcrs.length <= 24 && pcrs.every((p: unknown) => integer(p, 0, 23)))
  );
}

function text(value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length <= max;
}

/** As `IsBase64String`: non-empty, canonical standard base64 with padding. */
function base64(value: unknown, max: number): boolean {
  return typeof value === 'string' && value.length > 0 && value.length <= max && isCanonicalBase64(value);
}

function integer(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function boolean(value: unknown): boolean {
  return typeof value === 'boolean';
}

function agentId(value: unknown): boolean {
  return typeof value === 'string' && isKeylimeAgentId(value);
}
