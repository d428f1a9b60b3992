import type { AgentClient } from '../../../lib/agent/agent-client.js';
import { akPublicKey, type AgentPolicies } from '../../../lib/attestation/agent-policies.js';
import { initialAgentState } from '../../../lib/attestation/agent-state.js';
import type { PolledAgent } from '../../../lib/verifier/polled-agent.js';
import type { VerifierAgentEnrolment } from '../../../lib/verifier/verifier-agent-record.js';
import type { FakeAgent } from '../../attestation/fake-agent.js';
import { testAgentPolicies } from '../../helpers/agent-policies.js';

/** What a test round's agent differs by; everything else is a fresh agent polled at API 2.2 with no V. */
export interface ScriptedPolledAgentInput {
  readonly agentId: string;
  /** The fake agent whose AK the policies name. */
  readonly fake: FakeAgent;
  /** Anything with the `AgentClient` methods the round calls. */
  readonly connection: unknown;
  readonly mask: string;
  readonly policies?: Partial<AgentPolicies>;
  readonly v?: string | null;
  readonly apiVersion?: string;
}

/** A `PolledAgent` for `runPullRound` tests, with a scripted or fake connection instead of HTTPS. */
export function scriptedPolledAgent(input: ScriptedPolledAgentInput): PolledAgent {
  return {
    enrolment: { agentId: input.agentId, v: input.v ?? null } as VerifierAgentEnrolment,
    policies: testAgentPolicies(akPublicKey(input.fake.akTpm), input.policies),
    mask: input.mask,
    connection: input.connection as AgentClient,
    revocationTarget: { agentId: input.agentId, url: 'https://127.0.0.1:9002', apiVersion: '2.2' },
    state: initialAgentState(),
    retries: 0,
    timer: undefined,
    running: false,
    reconcileAfterRound: false,
    dueAt: 0,
    apiVersion: input.apiVersion ?? '2.2',
    rowVersion: undefined,
    policyVersions: { runtime: undefined, mb: undefined },
  };
}
