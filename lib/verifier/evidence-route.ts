import type { DependencyContainer } from 'tsyringe';
import { evaluateEvidence, type EvaluateEvidenceResult } from '../attestation/evaluate-evidence.js';
import { ok } from '../http/envelope.js';
import { EVIDENCE_BODY_LIMIT, type KeylimeService } from '../http/keylime-service.js';
import { EvidenceInputsCache } from './evidence-inputs-cache.js';
import type { VerifierConfig } from './verifier-config.js';
import { EvidenceBody } from './verifier-dtos.js';
import { VERIFIER_CONFIG } from './verifier-tokens.js';

/**
 * `POST /v2.x/verify/evidence` (spec §4.7, Keylime 2.5, from API 2.4; public): the pull loop's checks
 * on one piece of evidence, minus the TPM clock and PCR 16 (lib/attestation/evaluate-evidence.ts).
 * Policies are JSON text (a flat allowlist is accepted too); what the route derives from them and
 * from the AK is kept by text in an `EvidenceInputsCache` owned by this route, so repeated policies
 * are parsed and compiled once. Answers 200 `{valid, claims, failures}` whether valid or not; 400 for
 * a malformed body, policy or refstate (a regex the linear-time engine cannot run included).
 */
export function registerEvidenceRoute(service: KeylimeService, container: DependencyContainer): void {
  const cache = new EvidenceInputsCache();
  const config = (): Readonly<VerifierConfig> => container.resolve(VERIFIER_CONFIG);
  service.route({
    method: 'POST',
    url: '/verify/evidence',
    minVersion: '2.4',
    body: EvidenceBody,
    bodyLimit: EVIDENCE_BODY_LIMIT,
    handler: ({ body, reply }) => {
      const result = verifyEvidence(body, cache, config());
      return ok(reply, { valid: result.valid, claims: result.claims, failures: result.failures });
    },
  });
}

function verifyEvidence(body: EvidenceBody, cache: EvidenceInputsCache, config: Readonly<VerifierConfig>): EvaluateEvidenceResult {
  const data = body.data;
  const runtimeText = data.runtime_policy ?? '';
  const mbText = data.mb_policy ?? '';
  return evaluateEvidence(
    {
      quote: data.quote,
      nonce: data.nonce,
      hashAlg: data.hash_alg,
      akTpm: cache.akTpm(data.tpm_ak),
      tpmPolicy: data.tpm_policy === undefined || data.tpm_policy === null || data.tpm_policy === '' ? null : data.tpm_policy,
      runtimePolicy: runtimeText.trim() === '' ? null : cache.runtimePolicy(runtimeText),
      mbRefstate: mbText.trim() === '' || mbText.trim() === 'null' ? null : cache.refstate(mbText),
      imaMeasurementList: data.ima_measurement_list ?? null,
      mbLog: data.mb_log === undefined || data.mb_log === null || data.mb_log === '' ? null : data.mb_log,
    },
    { measuredBootPolicy: config.measuredBootPolicy, failOnTomtou: config.failOnTomtou },
  );
}
