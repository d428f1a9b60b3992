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
