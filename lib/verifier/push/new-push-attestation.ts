import { randomBytes } from 'node:crypto';
import type { PushChoice } from '../../attestation/push-decision.js';
import type { CapabilitiesBody } from './push-dtos.js';
import type { NewPushAttestation } from './push-repository.js';

/** Phase 1's attestation `index` of `agentId` as it is inserted: awaiting evidence, with a fresh 16-byte challenge valid `challengeLifetime` seconds. */
export function newPushAttestation(agentId: string, index: number, choice: PushChoice, body: CapabilitiesBody, now: Date, challengeLifetime: number): NewPushAttestation {
  return {
    agentId,
    index,
    stage: 'awaiting_evidence',
    challenge: randomBytes(16).toString('base64'),
    choice,
    systemInfo: body.data.attributes.system_info === undefined ? {} : { ...body.data.attributes.system_info },
    capabilitiesReceivedAt: now,
    challengesExpireAt: new Date(now.getTime() + challengeLifetime * 1000),
  };
}
