/**
 * Shape checks for the verifier replies the Rust push agent deserialises (rust-keylime
 * `keylime/src/structures/`: `sessions.rs` @53d6107, `evidence_handling.rs` and
 * `capabilities_negotiation.rs` in their versions with `meta`). Each returns the problems found, as
 * serde would refuse the document: a required field missing or of the wrong type. Unknown fields are
 * ignored, as serde does by default.
 */

type Json = Record<string, unknown>;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isUnsigned(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function isStringList(value: unknown): boolean {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

class Problems {
  readonly found: string[] = [];
  need(ok: boolean, what: string): void {
    if (!ok) this.found.push(what);
  }
  string(o: Json, key: string, at: string): void {
    this.need(typeof o[key] === 'string', `${at}.${key}: string`);
  }
  time(o: Json, key: string, at: string): void {
    this.need(typeof o[key] === 'string' && RFC3339.test(o[key] as string), `${at}.${key}: RFC 3339 time`);
  }
  optional(o: Json, key: string, check: (v: unknown) => boolean, at: string, what: string): void {
    if (o[key] !== undefined && o[key] !== null) this.need(check(o[key]), `${at}.${key}: ${what}`);
  }
}

/** `SessionIdResponse` (PATCH /sessions/{id}); `data.id` as the newer agent reads it (a string). */
export function sessionIdResponseProblems(document: unknown): string[] {
  const p = new Problems();
  const data = isObject(document) ? document['data'] : undefined;
  if (!isObject(data) || !isObject(data['attributes'])) return ['data.attributes: object'];
  p.string(data, 'type', 'data');
  p.string(data, 'id', 'data');
  const a = data['attributes'];
  for (const key of ['agent_id', 'evaluation']) p.string(a, key, 'attributes');
  p.optional(a, 'token', (v) => typeof v === 'string', 'attributes', 'string');
  for (const key of ['created_at', 'challenges_expire_at', 'response_received_at']) p.time(a, key, 'attributes');
  p.optional(a, 'token_expires_at', (v) => typeof v === 'string' && RFC3339.test(v), 'attributes', 'RFC 3339 time');
  const auth = a['authentication'];
  p.need(Array.isArray(auth), 'attributes.authentication: list');
  for (const item of Array.isArray(auth) ? auth : []) {
    if (!isObject(item) || !isObject(item['chosen_parameters']) || !isObject(item['data'])) {
      p.need(false, 'authentication[]: object with chosen_parameters and data');
      continue;
    }
    p.string(item, 'authentication_class', 'authentication[]');
    p.string(item, 'authentication_type', 'authentication[]');
    p.string(item['chosen_parameters'], 'challenge', 'authentication[].chosen_parameters');
    p.string(item['data'], 'message', 'authentication[].data');
    p.string(item['data'], 'signature', 'authentication[].data');
  }
  return p.found;
}

/** `EvidenceHandlingResponse` (the 202 of PATCH .../attestations/{index}). */
export function evidenceHandlingResponseProblems(document: unknown): string[] {
  const p = new Problems();
  if (!isObject(document) || !isObject(document['data']) || !isObject(document['data']['attributes'])) return ['data.attributes: object'];
  const data = document['data'];
  p.string(data, 'type', 'data');
  const a = data['attributes'] as Json;
  p.string(a, 'stage', 'attributes');
  for (const key of ['capabilities_received_at', 'challenges_expire_at', 'evidence_received_at']) {
    p.optional(a, key, (v) => typeof v === 'string' && RFC3339.test(v), 'attributes', 'RFC 3339 time');
  }
  p.optional(a, 'system_info', (v) => isObject(v) && typeof v['boot_time'] === 'string' && RFC3339.test(v['boot_time']), 'attributes', 'object with an RFC 3339 boot_time');
  const meta = document['meta'];
  if (meta !== undefined && meta !== null) {
    p.need(isObject(meta), 'meta: object');
    if (isObject(meta)) p.optional(meta, 'seconds_to_next_attestation', isUnsigned, 'meta', 'unsigned integer');
  }
  const evidence = a['evidence'];
  p.need(Array.isArray(evidence), 'attributes.evidence: list');
  for (const item of Array.isArray(evidence) ? evidence : []) {
    if (!isObject(item)) {
      p.need(false, 'evidence[]: object');
      continue;
    }
    p.string(item, 'evidence_class', 'evidence[]');
    p.string(item, 'evidence_type', 'evidence[]');
    p.need(quoteCapabilitiesProblems(item['capabilities']).length === 0 || logCapabilitiesProblems(item['capabilities']).length === 0, 'evidence[].capabilities: Capabilities or LogCapabilities');
    p.optional(item, 'chosen_parameters', (v) => chosenParametersProblems(v).length === 0, 'evidence[]', 'ChosenParameters');
    p.found.push(...evidenceDataProblems(item['data']));
  }
  return p.found;
}

function quoteCapabilitiesProblems(value: unknown): string[] {
  if (!isObject(value)) return ['capabilities: object'];
  const p = new Problems();
  p.string(value, 'component_version', 'capabilities');
  p.need(isStringList(value['hash_algorithms']), 'capabilities.hash_algorithms: list of strings');
  p.need(isStringList(value['signature_schemes']), 'capabilities.signature_schemes: list of strings');
  p.need(isObject(value['available_subjects']), 'capabilities.available_subjects: PcrBanks');
  const keys = value['certification_keys'];
  p.need(Array.isArray(keys) && keys.every((k) => certificationKeyProblems(k).length === 0), 'capabilities.certification_keys: list of CertificationKey');
  return p.found;
}

function logCapabilitiesProblems(value: unknown): string[] {
  if (!isObject(value)) return ['capabilities: object'];
  const p = new Problems();
  p.need(isUnsigned(value['entry_count']), 'capabilities.entry_count: unsigned integer');
  p.need(typeof value['supports_partial_access'] === 'boolean', 'capabilities.supports_partial_access: boolean');
  p.need(typeof value['appendable'] === 'boolean', 'capabilities.appendable: boolean');
  p.need(isStringList(value['formats']), 'capabilities.formats: list of strings');
  return p.found;
}

function certificationKeyProblems(value: unknown): string[] {
  if (!isObject(value)) return ['certification_key: object'];
  const p = new Problems();
  for (const key of ['key_algorithm', 'key_class', 'server_identifier', 'local_identifier', 'public']) p.string(value, key, 'certification_key');
  p.need(isUnsigned(value['key_size']), 'certification_key.key_size: unsigned integer');
  p.optional(value, 'allowable_hash_algorithms', isStringList, 'certification_key', 'list of strings');
  p.optional(value, 'allowable_signature_schemes', isStringList, 'certification_key', 'list of strings');
  return p.found;
}

/** `ChosenParameters`: log parameters (a `format`), else certification parameters (at least one field set). */
function chosenParametersProblems(value: unknown): string[] {
  if (!isObject(value)) return ['chosen_parameters: object'];
  if (typeof value['format'] === 'string') {
    const p = new Problems();
    p.optional(value, 'starting_offset', isUnsigned, 'chosen_parameters', 'unsigned integer');
    p.optional(value, 'entry_count', isUnsigned, 'chosen_parameters', 'unsigned integer');
    if (p.found.length === 0) return [];
  }
  const p = new Problems();
  p.optional(value, 'challenge', (v) => typeof v === 'string', 'chosen_parameters', 'string');
  p.optional(value, 'hash_algorithm', (v) => typeof v === 'string', 'chosen_parameters', 'string');
  p.optional(value, 'signature_scheme', (v) => typeof v === 'string', 'chosen_parameters', 'string');
  p.optional(value, 'selected_subjects', (v) => isObject(v) && Object.values(v).every((pcrs) => pcrs === null || (Array.isArray(pcrs) && pcrs.every(isUnsigned))), 'chosen_parameters', 'PcrBanks');
  p.optional(value, 'certification_key', (v) => certificationKeyProblems(v).length === 0, 'chosen_parameters', 'CertificationKey');
  const set = ['challenge', 'hash_algorithm', 'signature_scheme', 'selected_subjects', 'certification_key'].some((k) => value[k] !== undefined && value[k] !== null);
  p.need(set, 'chosen_parameters: a format, or at least one certification parameter');
  return p.found;
}

/** `EvidenceData`, read as its `TryFrom<JsonValue>` does: by `subject_data`, else `entry_count`, else `entries`. */
function evidenceDataProblems(value: unknown): string[] {
  if (!isObject(value)) return ['evidence[].data: object'];
  const p = new Problems();
  if (value['subject_data'] !== undefined) {
    for (const key of ['subject_data', 'message', 'signature']) p.string(value, key, 'evidence[].data');
  } else if (value['entry_count'] !== undefined) {
    p.need(isUnsigned(value['entry_count']), 'evidence[].data.entry_count: unsigned integer');
    p.string(value, 'entries', 'evidence[].data');
  } else {
    p.string(value, 'entries', 'evidence[].data');
  }
  return p.found;
}
