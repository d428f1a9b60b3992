import { createHash } from 'node:crypto';
import { IronlimeError, InvalidParameterValue } from '../../interfaces/errors.js';
import { formatPcrMask } from '../../lib/attestation/tpm-policy.js';
import { loadRuntimePolicy } from '../../lib/ima/policy-loader.js';
import { POLICY_GENERATOR, type RuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { parseMbRefstate } from '../../lib/mb/parse-refstate.js';
import { MEASURED_BOOT_PCRS } from '../../lib/mb/verify-replay.js';
import type { KeylimeNodeSettings } from './keylime-driver-info.js';

/** PCR the IMA log extends (Linux IMA `CONFIG_IMA_MEASURE_PCR_IDX`). */
const IMA_PCR = 10;

/** The fetched, checksum-checked documents of one node. */
export interface FetchedDocuments {
  readonly policy: Uint8Array;
  readonly excludelist: Uint8Array | undefined;
  readonly mbRefstate: Uint8Array | undefined;
}

/** What the driver enrols a node with, in the verifier's wire form (spec §4.1). */
export interface EnrolmentPolicy {
  readonly runtimePolicy: RuntimePolicy;
  /** The refstate JSON text as fetched (validated), or null for no measured-boot policy. */
  readonly mbRefstateJson: string | null;
  /** `tpm_policy` with its `mask`: the node's PCR policy, plus PCR 10 and the boot PCRs as needed. */
  readonly tpmPolicy: Readonly<Record<string, string | readonly string[]>>;
  /**
   * sha256 over the inputs (document digests, formats and the PCR policy): two enrolments with the same
   * fingerprint check the node against the same policy. It is stored in the enrolment's `metadata`
   * so a later `startAttestation` can tell whether the node is already enrolled as asked.
   */
  readonly fingerprint: string;
}

/**
 * Builds the policies the verifier is given from the fetched documents: the allowlist (or JSON runtime
 * policy) plus the exclude list becomes a Keylime runtime policy (`loadRuntimePolicy`, as the tenant
 * converts a legacy allowlist); the refstate is validated; the PCR mask is the policy's PCRs, PCR 10
 * when the runtime policy accepts anything (as Keylime's tenant does), and `MEASUREDBOOT_PCRS` when
 * a refstate is given.
 *
 * @throws InvalidParameterValue naming the `driver_info` field whose document is malformed.
 */
export function buildEnrolmentPolicy(settings: KeylimeNodeSettings, documents: FetchedDocuments): EnrolmentPolicy {
  const policyField = `driver_info.${settings.policy.source.field}`;
  const excludeListText = documents.excludelist === undefined ? '' : utf8(documents.excludelist, 'driver_info.keylime_excludelist');
  const runtimePolicy = asFieldError(policyField, () => {
    const loaded = loadRuntimePolicy(utf8(documents.policy, policyField), { excludeListText });
    if (settings.policy.format === 'runtime-policy' && loaded.format === 'flat-allowlist') {
      throw new InvalidParameterValue(policyField, 'is a flat allowlist, not a JSON runtime policy: give it as keylime_allowlist');
    }
    return loaded.policy;
  });
  let mbRefstateJson: string | null = null;
  if (documents.mbRefstate !== undefined) {
    const text = utf8(documents.mbRefstate, 'driver_info.keylime_mb_refstate');
    asFieldError('driver_info.keylime_mb_refstate', () => parseMbRefstate(text));
    mbRefstateJson = text;
  }
  let mask = settings.tpmPolicy.mask;
  if (runtimePolicy.meta.generator > POLICY_GENERATOR.EmptyAllowList) {
    mask |= 1 << IMA_PCR;
  }
  if (mbRefstateJson !== null) {
    for (const pcr of MEASURED_BOOT_PCRS) {
      mask |= 1 << pcr;
    }
  }
  const tpmPolicy = { ...settings.tpmPolicyJson, mask: formatPcrMask(mask) };
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        policy: [settings.policy.format, sha256(documents.policy)],
        excludelist: documents.excludelist === undefined ? null : sha256(documents.excludelist),
        mbRefstate: documents.mbRefstate === undefined ? null : sha256(documents.mbRefstate),
        tpmPolicy,
      }),
    )
    .digest('hex');
  return { runtimePolicy, mbRefstateJson, tpmPolicy, fingerprint };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function utf8(bytes: Uint8Array, field: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new InvalidParameterValue(field, 'the document is not UTF-8 text', { cause });
  }
}

/** Runs `parse`, turning a policy or refstate error into `InvalidParameterValue` on `field`. */
function asFieldError<T>(field: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof IronlimeError && !(error instanceof InvalidParameterValue)) {
      throw new InvalidParameterValue(field, error.message, { cause: error });
    }
    throw error;
  }
}
