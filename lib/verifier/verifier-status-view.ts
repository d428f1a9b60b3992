import { IsOptional } from 'class-validator';
import { BadRemoteReplyError } from '../http/client-errors.js';
import type { VerifierAgentView } from '../attestation/operator-decision.js';
import { validateDto } from '../http/dto-validation.js';
import { RequestValidationError } from '../http/http-errors.js';
import { Accepts, isBoolean, isPositiveNumber, isText, periodSeconds } from './status-field-rules.js';
import { VerifierAgentStatus } from './verifier-client-replies.js';

/** The verifier's record of an agent, as far as the keylime driver and `ironlime tenant status` read it (`judgeVerifierStatus`). */
export interface VerifierAgent extends VerifierAgentView {
  /** The enrolment's `metadata` JSON text (`meta_data`), where the driver keeps its policy fingerprint. */
  readonly metaData: string;
}

/**
 * `GET /v2.x/agents/{id}` results (spec §4.2) as the keylime driver and the tenant's `status` read them from any verifier: ours, or a
 * Keylime release. Every field is optional, because releases differ in what they return (a push agent
 * has no `operational_state`, `attestation_status` and `attestation_period` came with API 2.5,
 * `trusted` and `freshness_bound` are ironlime's); null counts as absent. A field that is present
 * with the wrong type (`trusted: "false"`, `operational_state: "3"`) is refused, never read as
 * absent. Types are checked strictly: a number in a string is not a number. The fields the client
 * reads too are `VerifierAgentStatus`'s, with its rules: one reply is never read two ways.
 */
export class VerifierStatusReply extends VerifierAgentStatus {
  /** The agent the reply is about, when the verifier says (it must be the one asked about). */
  @IsOptional()
  @Accepts('a string', isText)
  agent_id?: string | null;

  /** ironlime: a PASS no older than `freshness_bound`. */
  @IsOptional()
  @Accepts('a boolean', isBoolean)
  trusted?: boolean | null;

  /** ironlime: seconds. */
  @IsOptional()
  @Accepts('a positive number of seconds', isPositiveNumber)
  freshness_bound?: number | null;
}

/**
 * The verifier's status reply of `agentId`, validated with `VerifierStatusReply` (unknown fields dropped).
 *
 * @throws BadRemoteReplyError when the reply is not an object, a field has the wrong type, or its
 *   `agent_id` names another agent: the
 *   service's fault, not the node's — the driver's operations report it as AttestationServiceUnavailable
 *   (fail closed: a status the driver cannot read is never trusted, nor does it block a removal).
 */
export function verifierStatusReplyOf(agentId: string, results: unknown): VerifierStatusReply {
  let reply: VerifierStatusReply;
  try {
    reply = validateDto(VerifierStatusReply, results, 'results');
  } catch (error) {
    if (error instanceof RequestValidationError) {
      throw new BadRemoteReplyError(`verifier status of agent ${agentId}`, `wrongly typed fields (${error.message}): not trusted`, { cause: error });
    }
    throw error;
  }
  // Another agent's status must never stand in for this one's (its PASS would be trusted).
  if (reply.agent_id !== undefined && reply.agent_id !== null && reply.agent_id !== agentId) {
    throw new BadRemoteReplyError(`verifier status of agent ${agentId}`, `it names agent ${JSON.stringify(reply.agent_id.slice(0, 64))}: not trusted`);
  }
  return reply;
}

/** `verifierStatusReplyOf` as the view `judgeVerifierStatus` reads. @throws BadRemoteReplyError as `verifierStatusReplyOf` */
export function verifierAgentOf(agentId: string, results: unknown): VerifierAgent {
  return agentViewOf(verifierStatusReplyOf(agentId, results));
}

/** A validated reply as the view `judgeVerifierStatus` reads: absent fields given neutral values (no state, no successes, no metadata). */
export function agentViewOf(reply: VerifierStatusReply): VerifierAgent {
  return {
    operationalState: reply.operational_state ?? null,
    attestationCount: reply.attestation_count ?? 0,
    attestationStatus: reply.attestation_status ?? undefined,
    lastEventId: reply.last_event_id ?? null,
    severityLevel: reply.severity_level ?? null,
    failureEventIds: [],
    failureReasons: [],
    lastSuccessfulAttestation: reply.last_successful_attestation ?? 0,
    attestationPeriodSeconds: periodSeconds(reply.attestation_period),
    trusted: reply.trusted ?? undefined,
    freshnessBoundSeconds: reply.freshness_bound ?? undefined,
    metaData: reply.meta_data ?? '',
  };
}
