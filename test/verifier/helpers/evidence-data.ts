import type { RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import type { TpmEvidenceData } from '../../../lib/verifier/verify-route-dtos.js';
import type { FakeAgent } from '../../attestation/fake-agent.js';

/** The `data` of a `POST /verify/evidence` body made from a fresh reply of `agent`, with `extra` on top. */
export function evidenceData(agent: FakeAgent, nonce: string, mask: number, extra: Partial<Record<keyof TpmEvidenceData, unknown>> = {}): TpmEvidenceData {
  const reply = agent.reply({ nonce, mask });
  return {
    quote: reply.quote,
    nonce,
    hash_alg: reply.hash_alg,
    tpm_ak: agent.akTpm,
    ima_measurement_list: reply.ima_measurement_list,
    ...(reply.mb_measurement_list === undefined ? {} : { mb_log: reply.mb_measurement_list }),
    ...extra,
  } as TpmEvidenceData;
}

/** `POST /v2.5/verify/evidence` of a TPM evidence `data` to an in-process `verifier`: the reply's status and parsed body. */
export async function postEvidence(verifier: RunningVerifier, data: object): Promise<{ status: number; body: unknown }> {
  const response = await verifier.service.app.inject({ method: 'POST', url: '/v2.5/verify/evidence', payload: { type: 'tpm', data } });
  return { status: response.statusCode, body: JSON.parse(response.body) as unknown };
}
