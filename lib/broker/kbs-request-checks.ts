import { RequestValidationError } from '../http/http-errors.js';
import { checkJsonValue } from '../http/json-guard.js';
import { isCanonicalBase64, isKeylimeAgentId } from '../http/validators.js';
import { RESOURCE_PART, type ResourcePath, type RuntimeData } from './kbs-wire.js';
import { EVIDENCE_LIMITS, type UntrustedTpmEvidence } from './tpm-evidence.js';

/** An Attestation body whose form was checked: `runtime-data` exactly as sent, and the TPM evidence. */
export interface CheckedAttestation {
  readonly runtimeData: RuntimeData;
  readonly evidence: UntrustedTpmEvidence;
}

type Plain = Readonly<Record<string, unknown>>;

const QUOTE = /^r[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/;
const HASH_ALGS: readonly string[] = ['sha1', 'sha256', 'sha384', 'sha512'];
const INIT_DATA_FORMATS: readonly string[] = ['json', 'toml'];
const TEXT_LIMIT = 64 * 1024;
const SHORT_LIMIT = 32;
const NONCE_LIMIT = 128;

/**
 * The form checks of the three KBS routes every exchange and fetch takes (`/auth`, `/attest`,
 * `/resource/…`), written out: the rules their class-validator DTOs held, refused the same way
 * (`RequestValidationError` naming the member, a KBS `SerdeError`), without class-transformer and
 * class-validator, which cost more per request than the rest of a token fetch and, on an attest body
 * carrying a boot log, more than its quote check. Unknown members are refused at every level, optional
 * members may be absent or null, lengths are bounded before any content is examined, prototype keys and
 * deep nesting are refused first (`checkJsonValue`). Form only: the evidence is judged by
 * `appraiseTpmEvidence`.
 */

/** `POST /kbs/v0/auth` (kbs-types `Request`): `{version, tee, extra-params?}`; the hints are read, never trusted. */
export function checkAuthRequest(body: unknown): { readonly version: string; readonly tee: string } {
  const request = jsonObject(body);
  onlyMembers(request, 'body', ['version', 'tee', 'extra-params']);
  const extraParams = request['extra-params'];
  if (extraParams !== undefined && extraParams !== null) {
    object(extraParams, 'body.extra-params');
  }
  return { version: text(request['version'], 'body.version', SHORT_LIMIT), tee: text(request['tee'], 'body.tee', SHORT_LIMIT) };
}

/** `GET /kbs/v0/resource/<repository>/<type>/<tag>`: each part 1–128 of `[A-Za-z0-9._-]`. */
export function checkResourcePath(params: unknown): ResourcePath {
  const path = object(params, 'params');
  onlyMembers(path, 'params', ['repository', 'type', 'tag']);
  const part = (name: string): string => {
    const value = path[name];
    if (typeof value !== 'string' || !RESOURCE_PART.test(value)) {
      throw new RequestValidationError(`params.${name}`, `must match ${RESOURCE_PART} regular expression`);
    }
    return value;
  };
  return { repository: part('repository'), type: part('type'), tag: part('tag') };
}

/** `POST /kbs/v0/attest` (kbs-types `Attestation`, kebab-case). */
export function checkAttestation(plain: unknown): CheckedAttestation {
  const body = jsonObject(plain);
  onlyMembers(body, 'body', ['init-data', 'runtime-data', 'tee-evidence']);
  const initData = body['init-data'];
  if (initData !== undefined && initData !== null) {
    const init = object(initData, 'body.init-data');
    onlyMembers(init, 'body.init-data', ['format', 'body']);
    oneOf(init['format'], 'body.init-data.format', INIT_DATA_FORMATS);
    text(init['body'], 'body.init-data.body', TEXT_LIMIT);
  }
  const runtimeData = object(body['runtime-data'], 'body.runtime-data');
  onlyMembers(runtimeData, 'body.runtime-data', ['nonce', 'tee-pubkey']);
  base64(runtimeData['nonce'], 'body.runtime-data.nonce', NONCE_LIMIT);
  const teePubkey = object(runtimeData['tee-pubkey'], 'body.runtime-data.tee-pubkey');
  if (Object.keys(teePubkey).length === 0) {
    throw new RequestValidationError('body.runtime-data.tee-pubkey', 'must be a non-empty object');
  }
  const teeEvidence = object(body['tee-evidence'], 'body.tee-evidence');
  onlyMembers(teeEvidence, 'body.tee-evidence', ['primary_evidence', 'additional_evidence']);
  if (teeEvidence['additional_evidence'] !== undefined && teeEvidence['additional_evidence'] !== null) {
    text(teeEvidence['additional_evidence'], 'body.tee-evidence.additional_evidence', TEXT_LIMIT);
  }
  return { runtimeData: runtimeData as unknown as RuntimeData, evidence: tpmEvidence(teeEvidence['primary_evidence']) };
}

function tpmEvidence(value: unknown): UntrustedTpmEvidence {
  const path = 'body.tee-evidence.primary_evidence';
  const evidence = object(value, path);
  onlyMembers(evidence, path, ['agent_id', 'quote', 'hash_alg', 'ima_measurement_list', 'mb_measurement_list']);
  const agentId = evidence['agent_id'];
  if (typeof agentId !== 'string' || !isKeylimeAgentId(agentId)) {
    throw new RequestValidationError(`${path}.agent_id`, 'must be an agent id of letters, digits, "_", "." and "-"');
  }
  const quote = text(evidence['quote'], `${path}.quote`, EVIDENCE_LIMITS.quote);
  if (!QUOTE.test(quote)) {
    throw new RequestValidationError(`${path}.quote`, 'must be a Keylime quote string r<attest>:<sig>:<pcrs>');
  }
  const checked: { -readonly [K in keyof UntrustedTpmEvidence]: UntrustedTpmEvidence[K] } = {
    agent_id: agentId,
    quote,
    hash_alg: oneOf(evidence['hash_alg'], `${path}.hash_alg`, HASH_ALGS),
  };
  const imaList = evidence['ima_measurement_list'];
  if (imaList !== undefined && imaList !== null) {
    checked.ima_measurement_list = text(imaList, `${path}.ima_measurement_list`, EVIDENCE_LIMITS.imaList);
  }
  const bootLog = evidence['mb_measurement_list'];
  if (bootLog !== undefined && bootLog !== null) {
    checked.mb_measurement_list = base64(bootLog, `${path}.mb_measurement_list`, EVIDENCE_LIMITS.mbLog);
  }
  return checked;
}

/** A request body: a JSON object without prototype keys or excessive nesting. */
function jsonObject(body: unknown): Plain {
  const checked = object(body, 'body');
  checkJsonValue(checked, 'body');
  return checked;
}

function object(value: unknown, path: string): Plain {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RequestValidationError(path, 'must be an object');
  }
  return value as Plain;
}

function onlyMembers(value: Plain, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new RequestValidationError(`${path}.${key}`, `property ${key} should not exist`);
    }
  }
}

function text(value: unknown, path: string, maxLength: number): string {
  if (typeof value !== 'string') {
    throw new RequestValidationError(path, 'must be a string');
  }
  if (value.length > maxLength) {
    throw new RequestValidationError(path, `must be shorter than or equal to ${maxLength} characters`);
  }
  return value;
}

function oneOf(value: unknown, path: string, allowed: readonly string[]): string {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new RequestValidationError(path, `must be one of the following values: ${allowed.join(', ')}`);
  }
  return value;
}

/** Canonical, non-empty base64 (what decodes and re-encodes to itself), at most `maxLength` characters. */
function base64(value: unknown, path: string, maxLength: number): string {
  const checked = text(value, path, maxLength);
  if (checked.length === 0 || !isCanonicalBase64(checked)) {
    throw new RequestValidationError(path, 'must be a base64 string');
  }
  return checked;
}
