import { createHash } from 'node:crypto';
import { canonicalJson } from '../bytes/canonical-json.js';

/**
 * Constants and pure helpers of the KBS RCAR protocol shared by the broker and the client
 * (trustee `kbs/docs/kbs_attestation_protocol.md`; guest-components `kbs_protocol`).
 */

/** The only protocol version accepted (trustee `attestation/backend.rs` requires `=0.4.0`). */
export const KBS_PROTOCOL_VERSION = '0.4.0';
/** Path prefix of every KBS route. */
export const KBS_PREFIX = '/kbs/v0';
/** Session cookie set by `/auth`, sent back with `/attest` and resource requests. */
export const KBS_SESSION_COOKIE = 'kbs-session-id';
/** The TEE this broker appraises: a TPM 2.0 quote (kbs-types `Tee::Tpm`). */
export const TEE_TPM = 'tpm';
/** Nonce length in bytes (`NONCE_SIZE_BYTES`). */
export const NONCE_BYTES = 32;
/**
 * Hash the broker selects for the report data. SHA-256 keeps the TPM's qualifying data at 32 bytes,
 * as guest-components does for TPMs (PR #1093).
 */
export const REPORT_DATA_HASH = 'sha256';

/** `runtime-data` of an Attestation: the session nonce and the key the resource is wrapped to. */
export interface RuntimeData {
  readonly nonce: string;
  readonly 'tee-pubkey': Readonly<Record<string, unknown>>;
}

/**
 * The report data that binds evidence to a session and a key: H(JCS(runtime-data)) with the selected
 * hash. For `tpm` it is the quote's qualifying data (TPMS_ATTEST.extraData).
 */
export function reportDataOf(runtimeData: RuntimeData): Uint8Array {
  return new Uint8Array(createHash(REPORT_DATA_HASH).update(canonicalJson(runtimeData), 'utf8').digest());
}

/** A resource path `<repository>/<type>/<tag>`: each part 1–128 of `[A-Za-z0-9._-]`, not `.` or `..`. */
export interface ResourcePath {
  readonly repository: string;
  readonly type: string;
  readonly tag: string;
}

/**
 * One part of a resource path, on the wire and in a `kbs:///` URI: 1–128 of `[A-Za-z0-9._-]`, not
 * `.` or `..` (trustee's `ResourceDesc::is_valid` refuses them too).
 */
export const RESOURCE_PART = /^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$/;

export function resourcePathText(path: ResourcePath): string {
  return `${path.repository}/${path.type}/${path.tag}`;
}
