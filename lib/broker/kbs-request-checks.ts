import { validateFast, type FastDto } from '../http/fast-path-checks.js';
import { fastAttestationBody, fastAuthRequest, fastResourcePath } from './kbs-body-fast-path.js';
import { KBS_FORM, KbsAttestationBody, KbsRequestBody, ResourcePathParams, type TpmEvidenceDto } from './kbs-dtos.js';
import type { ResourcePath, RuntimeData } from './kbs-wire.js';
import { EVIDENCE_LIMITS, type UntrustedTpmEvidence } from './tpm-evidence.js';

/**
 * The input of the three KBS routes every exchange and fetch takes, checked by their DTOs
 * (`kbs-dtos.ts`) behind the fast path (`kbs-body-fast-path.ts`): what the fast path does not accept
 * goes to `validateDto`, which accepts it or throws the `RequestValidationError` naming the member (a
 * KBS `SerdeError`). The routes declare the three `FastDto`s to `addRoute`; the `check*` functions run
 * the same checks on a value alone (the fuzz targets).
 */

export const AUTH_REQUEST: FastDto<KbsRequestBody> = { dto: KbsRequestBody, fast: fastAuthRequest };
export const ATTESTATION: FastDto<KbsAttestationBody> = { dto: KbsAttestationBody, fast: fastAttestationBody };
export const RESOURCE_PATH: FastDto<ResourcePathParams> = { dto: ResourcePathParams, fast: fastResourcePath };

/**
 * Body limits (bytes) of the two KBS routes anyone may call, far below the service's (sized for the
 * admin routes' runtime policies): a body is refused (413) before it is parsed when even a compact
 * one could not pass the DTO. The DTO bounds count UTF-16 units, the limits bytes of UTF-8.
 * - `/auth`: `extra-params` at its bound if every unit took three bytes, and 1 KiB for the rest.
 * - `/attest`: the IMA list at its bound if every character took two bytes (each line's newline is
 *   sent as `\n`), the boot log at its bound (base64, one byte a character), and 1 MiB for the quote,
 *   the texts and the runtime data. An IMA list near its bound with much non-ASCII text is refused.
 */
export const AUTH_BODY_LIMIT = 3 * KBS_FORM.text + 1024;
export const ATTEST_BODY_LIMIT = 2 * EVIDENCE_LIMITS.imaList + EVIDENCE_LIMITS.mbLog + 1024 * 1024;

/**
 * An Attestation body whose form was checked: `runtime-data` exactly as sent, `additional_evidence`
 * (`""` when absent or null) and the TPM evidence.
 */
export interface CheckedAttestation {
  readonly runtimeData: RuntimeData;
  readonly additionalEvidence: string;
  readonly evidence: UntrustedTpmEvidence;
}

/** `POST /kbs/v0/auth` (kbs-types `Request`); the hints are read, never trusted. */
export function checkAuthRequest(body: unknown): { readonly version: string; readonly tee: string } {
  const { version, tee } = validateFast(AUTH_REQUEST, body, 'body');
  return { version, tee };
}

/** `GET /kbs/v0/resource/<repository>/<type>/<tag>`. */
export function checkResourcePath(params: unknown): ResourcePath {
  const { repository, type, tag } = validateFast(RESOURCE_PATH, params, 'params');
  return { repository, type, tag };
}

/** `POST /kbs/v0/attest` (kbs-types `Attestation`). */
export function checkAttestation(body: unknown): CheckedAttestation {
  return attestationInput(body, validateFast(ATTESTATION, body, 'body'));
}

/**
 * The attestation in `body` once `checked` is its checked form. `runtime-data` is the parsed body's
 * own object, not a DTO copy: the report data is the hash of it exactly as the node sent it.
 */
export function attestationInput(body: unknown, checked: KbsAttestationBody): CheckedAttestation {
  const teeEvidence = checked['tee-evidence'];
  return {
    runtimeData: (body as { readonly 'runtime-data': RuntimeData })['runtime-data'],
    additionalEvidence: teeEvidence.additional_evidence ?? '',
    evidence: tpmEvidence(teeEvidence.primary_evidence),
  };
}

/** The evidence members the appraisal reads; a null optional member (the DTO allows it) is absent. */
function tpmEvidence(evidence: TpmEvidenceDto): UntrustedTpmEvidence {
  const { agent_id, quote, hash_alg, ima_measurement_list: imaList, mb_measurement_list: bootLog } = evidence;
  return {
    agent_id,
    quote,
    hash_alg,
    ...(imaList === undefined || imaList === null ? {} : { ima_measurement_list: imaList }),
    ...(bootLog === undefined || bootLog === null ? {} : { mb_measurement_list: bootLog }),
  };
}
