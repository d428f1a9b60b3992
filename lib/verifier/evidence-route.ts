import type { DependencyContainer } from 'tsyringe';
import { okJsonText } from '../http/envelope.js';
import { BodyBudget } from '../http/body-budget.js';
import { EVIDENCE_BODY_LIMIT, type KeylimeService } from '../http/keylime-service.js';
import { resultsJson } from './evidence-check.js';
import { EvidenceWorkerPool } from './evidence-worker-pool.js';
import type { VerifierConfig } from './verifier-config.js';
import { VERIFIER_CONFIG } from './verifier-tokens.js';

/**
 * `POST /v2.x/verify/evidence` (spec §4.7, Keylime 2.5, from API 2.4; public): the pull loop's checks
 * on one piece of evidence, minus the TPM clock and PCR 16 (lib/attestation/evaluate-evidence.ts).
 * The event loop only reads the body (TLS, HTTP, the body limit) and hands it to the route's
 * `EvidenceWorkerPool` (worker threads, one per core: a body over 1 MiB as bytes, decoded there too), where it is parsed and validated (JSON guard,
 * the `EvidenceBody` DTO) and checked, each thread with its own `EvidenceInputsCache` (policies,
 * refstates and AKs derived once per text; the measured-boot memo). Answers 200
 * `{valid, claims, failures}` whether valid or not; 400 for a malformed body, policy or refstate (a
 * regex the linear-time engine cannot run included); 500 if a worker ends before answering.
 */
export function registerEvidenceRoute(service: KeylimeService, container: DependencyContainer): void {
  const pool = new EvidenceWorkerPool();
  const config: Readonly<VerifierConfig> = container.resolve(VERIFIER_CONFIG);
  service.app.addHook('onClose', () => pool.close());
  service.route({
    method: 'POST',
    url: '/verify/evidence',
    minVersion: '2.4',
    rawBody: true,
    bodyLimit: EVIDENCE_BODY_LIMIT,
    bodyBudget: new BodyBudget(config.evidenceBodyBudget),
    handler: async ({ rawBody, reply }) => {
      const answer = await pool.check(rawBody ?? '', { measuredBootPolicy: config.measuredBootPolicy, failOnTomtou: config.failOnTomtou });
      return okJsonText(reply, resultsJson(answer));
    },
  });
}
