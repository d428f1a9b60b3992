import type { KeyObject } from 'node:crypto';
import type { CompiledRuntimePolicy } from '../ima/compiled-policy.js';
import type { ImaKeyring } from '../ima/ima-keyring.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { signingKeyFrom } from '../tpm/tpm-signature-check.js';
import { WeakAkError } from '../tpm/tpm-errors.js';
import { parsePublicArea } from '../tpm/tpmt-public.js';
import { tpmKeyWeakness } from '../tpm/weak-tpm-key.js';
import type { AcceptedAlgorithms } from './internal/pre-checks.js';
import type { TpmPolicy } from './tpm-policy.js';

/** Keylime `[verifier] measured_boot_evaluate`: evaluate the refstate on the first round only, or every round. */
export type MeasuredBootEvaluate = 'once' | 'always';

/**
 * `tpm_policy` exactly as the tenant sends and the verifier stores it (spec §4.1):
 * `{"<pcr>": ["<hex>", …], "mask": "0x…"}`. Validate it at enrolment with `parseTpmPolicy`.
 */
export type TpmPolicyJson = Readonly<Record<string, string | readonly string[]>>;

/**
 * What the tenant enrolled for an agent (spec §4.1), in the form the engine uses. Build it once per
 * enrolment/policy change and reuse it every round: policies are parsed and compiled, the AK decoded.
 */
export interface AgentPolicies extends AcceptedAlgorithms {
  /** Keylime JSON `tpm_policy`, or the policy `parseTpmPolicy` made of it (cheapest: not parsed again every round). */
  readonly tpmPolicy: TpmPolicyJson | string | TpmPolicy;
  /**
   * The runtime (IMA) policy, compiled by lib/ima (`loadRuntimePolicy` + `compileRuntimePolicy`), or
   * null for none: the IMA list is then checked for template hashes and PCR 10 only.
   */
  readonly runtimePolicy: CompiledRuntimePolicy | null;
  /** Tenant IMA signature keys (`ima_sign_verification_keys`), if any. */
  readonly imaKeyring?: ImaKeyring;
  /** The measured-boot refstate (`mb_policy`, parsed by lib/mb `parseMbRefstate`), or null for none. */
  readonly mbRefstate: MbRefstate | null;
  readonly measuredBootEvaluate: MeasuredBootEvaluate;
  /**
   * The AK: `ak_tpm` as the registrar gives it (base64 TPM2B_PUBLIC), its bytes, or the node:crypto key
   * made once with `akPublicKey` (cheapest: no parsing per round).
   */
  readonly akTpm: string | Uint8Array | KeyObject;
}

/**
 * The AK public key from `ak_tpm` (base64 TPM2B_PUBLIC, or its bytes). Throws `TpmParseError` /
 * `TpmKeyError` when it is malformed — check it at enrolment and cache the result.
 */
export function akPublicKey(akTpm: string | Uint8Array | KeyObject): KeyObject {
  if (typeof akTpm === 'string') {
    return signingKeyFrom(new Uint8Array(Buffer.from(akTpm, 'base64')));
  }
  return signingKeyFrom(akTpm);
}

/**
 * `akPublicKey` of an AK given as its TPM2B_PUBLIC (as it enters: a verifier enrolment, a broker node;
 * as it is loaded: a stored enrolment, the AK of a `/verify/evidence` request), refusing one no TPM
 * key can be trusted as (`tpmKeyWeakness`: short RSA, ROCA): a registrar that checks no key (Keylime's)
 * holds such AKs, a client may send one without any registrar, and enrolments stored before this check
 * hold them still. Throws `WeakAkError` (a `TpmKeyError`) for those.
 */
export function enteringAkPublicKey(akTpm: string | Uint8Array): KeyObject {
  const key = akPublicKey(akTpm);
  const weakness = tpmKeyWeakness(parsePublicArea(typeof akTpm === 'string' ? new Uint8Array(Buffer.from(akTpm, 'base64')) : akTpm));
  if (weakness !== null) throw new WeakAkError(`the AK ${weakness}`);
  return key;
}
