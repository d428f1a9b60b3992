import {
  hasOnlyKeys,
  isAbsentOr,
  isAgentIdString,
  isBase64OfAtMost,
  isOneOf,
  isStringMatching,
  isStringOfAtMost,
  passesJsonGuard,
} from '../http/fast-path-checks.js';
import { RESOURCE_PART } from './kbs-wire.js';
import { isJsonOfAtMost } from './json-size.js';
import { KBS_FORM, type KbsAttestationBody, type KbsRequestBody, type ResourcePathParams } from './kbs-dtos.js';
import { EVIDENCE_LIMITS } from './tpm-evidence.js';

/**
 * The fast path of the three KBS routes every exchange and fetch takes. class-transformer and
 * class-validator cost more per request than the rest of a token fetch (≈ 130 µs for the `/auth` body
 * or the resource path) and, on an attest body carrying a 51 KB boot log, more than its quote check
 * (630–775 µs; docs/broker.md, third pass).
 *
 * Each function is a SUFFICIENT condition for its DTO (`kbs-dtos.ts`, which stays the definition): it
 * returns the value, unchanged and typed, only when the DTO certainly accepts it as it is, and undefined
 * for anything else — also for some values the DTO accepts (a null optional member, a tee-pubkey member
 * that is not a string or not a public JWK member, a surrogate pair near a length bound). The caller then runs `validateDto`, so
 * every refusal is class-validator's. `test/broker/kbs-body-fast-path.test.ts` checks that it never
 * accepts what the DTO refuses.
 */

/** `POST /kbs/v0/auth`: the body when `KbsRequestBody` certainly accepts it. */
export function fastAuthRequest(value: unknown): KbsRequestBody | undefined {
  return passesJsonGuard(value) &&
    hasOnlyKeys(value, REQUEST, ['version', 'tee']) &&
    isStringOfAtMost(value['version'], KBS_FORM.short) &&
    isStringOfAtMost(value['tee'], KBS_FORM.short) &&
    isAbsentOr(value['extra-params'], (params) => isJsonOfAtMost(params, KBS_FORM.text))
    ? (value as unknown as KbsRequestBody)
    : undefined;
}

/** `POST /kbs/v0/attest`: the body when `KbsAttestationBody` certainly accepts it. */
export function fastAttestationBody(value: unknown): KbsAttestationBody | undefined {
  return passesJsonGuard(value) &&
    hasOnlyKeys(value, ATTESTATION, ['runtime-data', 'tee-evidence']) &&
    isAbsentOr(value['init-data'], initData) &&
    runtimeData(value['runtime-data']) &&
    teeEvidence(value['tee-evidence'])
    ? (value as unknown as KbsAttestationBody)
    : undefined;
}

/** `GET /kbs/v0/resource/<repository>/<type>/<tag>`: the params when `ResourcePathParams` certainly accepts them. */
export function fastResourcePath(value: unknown): ResourcePathParams | undefined {
  return hasOnlyKeys(value, RESOURCE_PATH, ['repository', 'type', 'tag']) && resourcePart(value['repository']) && resourcePart(value['type']) && resourcePart(value['tag'])
    ? (value as unknown as ResourcePathParams)
    : undefined;
}

const REQUEST = new Set(['version', 'tee', 'extra-params']);
const ATTESTATION = new Set(['init-data', 'runtime-data', 'tee-evidence']);
const INIT_DATA = new Set(['format', 'body']);
const RUNTIME_DATA = new Set(['nonce', 'tee-pubkey']);
const TEE_EVIDENCE = new Set(['primary_evidence', 'additional_evidence']);
const TPM_EVIDENCE = new Set(['agent_id', 'quote', 'hash_alg', 'ima_measurement_list', 'mb_measurement_list']);
const JWK_MEMBERS = new Set(['kty', 'crv', 'x', 'y', 'n', 'e', 'alg', 'use', 'kid']);
const RESOURCE_PATH = new Set(['repository', 'type', 'tag']);
const HASH_ALGS: ReadonlySet<string> = new Set(KBS_FORM.hashAlgs);
const INIT_DATA_FORMATS: ReadonlySet<string> = new Set(KBS_FORM.initDataFormats);

function initData(value: unknown): boolean {
  return hasOnlyKeys(value, INIT_DATA, ['format', 'body']) && isOneOf(value['format'], INIT_DATA_FORMATS) && isStringOfAtMost(value['body'], KBS_FORM.text);
}

function runtimeData(value: unknown): boolean {
  return hasOnlyKeys(value, RUNTIME_DATA, ['nonce', 'tee-pubkey']) && isBase64OfAtMost(value['nonce'], KBS_FORM.nonce) && jwkMembers(value['tee-pubkey']);
}

/**
 * A public JWK as the clients send it: `kty` and other RFC 7517/7518 public members, every one a string
 * (class-transformer drops a lone member named as an `Object.prototype` method, such as `hasOwnProperty`,
 * and the DTO then finds the key empty).
 */
function jwkMembers(value: unknown): boolean {
  return hasOnlyKeys(value, JWK_MEMBERS, ['kty']) && Object.values(value).every((member) => typeof member === 'string');
}

function teeEvidence(value: unknown): boolean {
  return (
    hasOnlyKeys(value, TEE_EVIDENCE, ['primary_evidence']) &&
    isAbsentOr(value['additional_evidence'], (text) => isStringOfAtMost(text, KBS_FORM.text)) &&
    tpmEvidence(value['primary_evidence'])
  );
}

function tpmEvidence(value: unknown): boolean {
  return (
    hasOnlyKeys(value, TPM_EVIDENCE, ['agent_id', 'quote', 'hash_alg']) &&
    isAgentIdString(value['agent_id']) &&
    isStringOfAtMost(value['quote'], EVIDENCE_LIMITS.quote) &&
    isStringMatching(value['quote'], KBS_FORM.quote) &&
    isOneOf(value['hash_alg'], HASH_ALGS) &&
    isAbsentOr(value['ima_measurement_list'], (list) => isStringOfAtMost(list, EVIDENCE_LIMITS.imaList)) &&
    isAbsentOr(value['mb_measurement_list'], (log) => isBase64OfAtMost(log, EVIDENCE_LIMITS.mbLog))
  );
}

function resourcePart(value: unknown): boolean {
  return isStringMatching(value, RESOURCE_PART);
}
