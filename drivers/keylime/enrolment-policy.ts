import { createHash } from 'node:crypto';
import { IronlimeError, InvalidParameterValue } from '../../interfaces/errors.js';
import { MbRefstateError } from '../../lib/mb/mb-refstate.js';
import { checkEnrolmentPolicies, type CheckedEnrolmentPolicies } from '../../lib/tenant/enrolment-request.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import type { KeylimeNodeSettings } from './keylime-driver-info.js';

/** The fetched, checksum-checked documents of one node. */
export interface FetchedDocuments {
  readonly policy: Uint8Array;
  readonly excludelist: Uint8Array | undefined;
  readonly mbRefstate: Uint8Array | undefined;
}

/** The driver's EK certificate check, which an enrolment was made under. */
export interface EkCheckSettings {
  readonly ekCheck: TenantEkCheckMode;
  readonly extraEkCaDirs: readonly string[];
}

/** What the driver enrols a node with. */
export interface EnrolmentPolicy {
  /** The policy fields of the enrolment, checked by the tenant's builder (`checkEnrolmentPolicies`). */
  readonly policies: CheckedEnrolmentPolicies;
  /**
   * sha256 over the inputs (document digests, formats, the final `tpm_policy`, push mode, the EK check and
   * its extra CA folders): two enrolments with the same fingerprint check the node against the same policy
   * and were let in by the same EK check. It is stored in the enrolment's
   * `metadata` so a later `startAttestation` can tell whether the node is already enrolled as asked.
   */
  readonly fingerprint: string;
}

/**
 * Maps the node's documents onto the tenant's enrolment input — the allowlist or JSON runtime policy
 * as `runtimePolicy`, the exclude list as `excludeList`, the refstate as `mbPolicy`, the PCR policy as
 * `tpmPolicy` — and checks them with the same builder the tenant uses, so the driver and
 * `ironlime tenant add` enrol a node alike (PCR 10 with every runtime policy, the measured-boot PCRs
 * with a refstate: see `checkEnrolmentPolicies`).
 *
 * @throws InvalidParameterValue naming the `driver_info` field whose document is malformed.
 */
export function buildEnrolmentPolicy(settings: KeylimeNodeSettings, documents: FetchedDocuments, identity: EkCheckSettings): EnrolmentPolicy {
  const policyField = `driver_info.${settings.policy.source.field}`;
  const runtimePolicy = utf8(documents.policy, policyField);
  const excludeList = documents.excludelist === undefined ? undefined : utf8(documents.excludelist, 'driver_info.keylime_excludelist');
  const mbPolicy = documents.mbRefstate === undefined ? undefined : utf8(documents.mbRefstate, 'driver_info.keylime_mb_refstate');
  const policies = asFieldError(policyField, () =>
    checkEnrolmentPolicies({
      runtimePolicy,
      ...(excludeList === undefined ? {} : { excludeList }),
      ...(mbPolicy === undefined ? {} : { mbPolicy }),
      tpmPolicy: settings.tpmPolicyJson,
    }),
  );
  if (settings.policy.format === 'runtime-policy' && policies.runtimePolicyFormat === 'flat-allowlist') {
    throw new InvalidParameterValue(policyField, 'is a flat allowlist, not a JSON runtime policy: give it as keylime_allowlist');
  }
  const fingerprint = createHash('sha256')
    .update(
      JSON.stringify({
        policy: [settings.policy.format, sha256(documents.policy)],
        excludelist: documents.excludelist === undefined ? null : sha256(documents.excludelist),
        mbRefstate: documents.mbRefstate === undefined ? null : sha256(documents.mbRefstate),
        tpmPolicy: JSON.parse(policies.tpmPolicy) as unknown,
        // A node switched between pull and push is enrolled again in its new mode. Only push is named,
        // so the fingerprints of pull enrolments made before the mode counted stay what they were.
        ...(settings.agentMode === 'push' ? { mode: 'push' } : {}),
        // An enrolment let in under a weaker EK check (or other CA folders) is checked again when it tightens:
        // otherwise a node enrolled under `warn` would keep passing under `require` with no EK check run.
        ekCheck: identity.ekCheck,
        ekCaDirs: [...identity.extraEkCaDirs].sort(),
      }),
    )
    .digest('hex');
  return { policies, fingerprint };
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

/**
 * Runs `check`, naming the `driver_info` field at fault: a refstate error names `keylime_mb_refstate`,
 * a `tpm_policy…` error `keylime_tpm_policy`, any other policy error the runtime policy's field.
 */
function asFieldError<T>(policyField: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidParameterValue && error.field.startsWith('tpm_policy')) {
      throw new InvalidParameterValue(`driver_info.keylime_${error.field}`, error.message.slice(error.field.length + 2), { cause: error });
    }
    if (error instanceof MbRefstateError) {
      throw new InvalidParameterValue('driver_info.keylime_mb_refstate', error.message, { cause: error });
    }
    if (error instanceof IronlimeError && !(error instanceof InvalidParameterValue)) {
      throw new InvalidParameterValue(policyField, error.message, { cause: error });
    }
    throw error;
  }
}
