import type { Knex } from 'knex';
import { initialAgentState } from '../../../lib/attestation/agent-state.js';
import { OperationalState } from '../../../lib/attestation/operational-state.js';
import type { PolledAgent } from '../../../lib/verifier/polled-agent.js';
import type { VerifierAgentRepository } from '../../../lib/verifier/verifier-agent-repository.js';
import { agentRowVersion } from './agent-row-version.js';
import { pullAgentEnrolment } from './pull-agent-enrolment.js';

/**
 * Enrols pull agent `agentId` (enrolled at `supportedVersion`) in GET_QUOTE under `owner`'s 600 s lease
 * and returns it as the pull loop holds it mid-round: running, at API version 2.6, with the stored row version.
 */
export async function polledAgentInGetQuote(knex: Knex, repository: VerifierAgentRepository, agentId: string, owner: string, supportedVersion = '2.6'): Promise<PolledAgent> {
  const enrolment = pullAgentEnrolment({ agentId, port: 9002, tpmPolicy: '{"mask": "0x400"}', akTpm: 'AAAA', mtlsCert: null, supportedVersion });
  await repository.insert(enrolment, initialAgentState(OperationalState.GET_QUOTE), owner, 600);
  const fields: Partial<PolledAgent> = {
    enrolment,
    state: initialAgentState(OperationalState.GET_QUOTE),
    retries: 0,
    running: true,
    reconcileAfterRound: false,
    apiVersion: '2.6',
    rowVersion: await agentRowVersion(knex, agentId),
  };
  return fields as PolledAgent;
}
