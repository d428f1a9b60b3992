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

/** Hashes of the runtime-data binding (kbs-types `HashAlgorithm`), as named on the wire. */
export const REPORT_DATA_HASHES = ['sha256', 'sha384', 'sha512'] as const;
export type ReportDataHash = (typeof REPORT_DATA_HASHES)[number];
/** The hash this broker selects in every Challenge and binds evidence with. */
export const REPORT_DATA_HASH: ReportDataHash = 'sha256';
/** The hash a client uses when the Challenge selects none (guest-components `DEFAULT_HASH_ALGORITHM`). */
export const DEFAULT_REPORT_DATA_HASH: ReportDataHash = 'sha384';
/**
 * Size of a TPM's report data (the quote's qualifying data): the digest cut or zero-padded to 32
 * bytes (guest-components PR #1093, trustee PR #1021), so SHA-256 is kept whole and SHA-384 and
 * SHA-512 keep their first 32 bytes.
 */
const TPM_REPORT_DATA_BYTES = 32;

/** `runtime-data` of an Attestation: the session nonce and the key the resource is wrapped to. */
export interface RuntimeData {
  readonly nonce: string;
  readonly 'tee-pubkey': Readonly<Record<string, unknown>>;
}

/** What a primary evidence's report data binds, and how. */
export interface ReportDataInput {
  readonly runtimeData: RuntimeData;
  /** `tee-evidence.additional_evidence` as sent (`""` when there are no other devices). */
  readonly additionalEvidence: string;
  readonly hash: ReportDataHash;
  /** The Request's tee: `tpm` fits the digest to `TPM_REPORT_DATA_BYTES`, any other keeps it whole. */
  readonly tee: string;
}

/**
 * The report data that binds primary evidence to a session, a key and the additional evidence:
 * H(JCS({"additional-evidence", "nonce", "tee-pubkey"})) with the selected hash, as trustee's
 * `__attest` checks it and guest-components' `get_composite_evidence` makes it (the two-member
 * `{nonce, tee-pubkey}` is only for additional devices). For `tpm` it is the quote's qualifying data
 * (TPMS_ATTEST.extraData).
 */
export function reportDataOf(input: ReportDataInput): Uint8Array {
  const { runtimeData, additionalEvidence, hash, tee } = input;
  const bound = { 'additional-evidence': additionalEvidence, nonce: runtimeData.nonce, 'tee-pubkey': runtimeData['tee-pubkey'] };
  const digest = createHash(hash).update(canonicalJson(bound), 'utf8').digest();
  if (tee !== TEE_TPM) {
    return new Uint8Array(digest);
  }
  const reportData = new Uint8Array(TPM_REPORT_DATA_BYTES);
  reportData.set(digest.subarray(0, TPM_REPORT_DATA_BYTES));
  return reportData;
}

/** The hash a Challenge's `selected-hash-algorithm` names (any letter case, as kbs-types parses it), if supported. */
export function reportDataHashNamed(name: string): ReportDataHash | undefined {
  const lower = name.toLowerCase();
  return REPORT_DATA_HASHES.find((hash) => hash === lower);
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
