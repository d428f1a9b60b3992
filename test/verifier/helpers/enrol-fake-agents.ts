import type { Knex } from 'knex';
import { initialAgentState } from '../../../lib/attestation/agent-state.js';
import { OperationalState } from '../../../lib/attestation/operational-state.js';
import { VerifierAgentRepository } from '../../../lib/verifier/verifier-agent-repository.js';
import type { FakeAgent } from '../../attestation/fake-agent.js';
import type { FakeAgentServer } from './fake-agent-server.js';
import { pullAgentEnrolment } from './pull-agent-enrolment.js';

/** Enrols every id of `agentIds` as a pull agent (API 2.2, PCR 10) answered by `server` as `fake`, START and owned by nobody. */
export async function enrolFakeAgents(knex: Knex, fake: FakeAgent, server: FakeAgentServer, agentIds: readonly string[], leaseSeconds: number): Promise<void> {
  const repository = new VerifierAgentRepository(knex);
  for (const agentId of agentIds) {
    await repository.insert(
      pullAgentEnrolment({ agentId, port: server.port, tpmPolicy: '{"mask": "0x400"}', akTpm: fake.akTpm, mtlsCert: server.certPem, supportedVersion: '2.2' }),
      initialAgentState(OperationalState.START),
      null,
      leaseSeconds,
    );
  }
}
