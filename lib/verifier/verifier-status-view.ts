import { IsOptional, ValidateBy } from 'class-validator';
import { BadRemoteReplyError } from '../http/client-errors.js';
import type { VerifierAgentView } from '../attestation/operator-decision.js';
import { validateDto } from '../http/dto-validation.js';
import { RequestValidationError } from '../http/http-errors.js';

/** The verifier's record of an agent, as far as the keylime driver and `ironlime tenant status` read it (`judgeVerifierStatus`). */
export interface VerifierAgent extends VerifierAgentView {
  /** The enrolment's `metadata` JSON text (`meta_data`), where the driver keeps its policy fingerprint. */
  readonly metaData: string;
}

/**
 * One rule on a reply field: `accept` decides, and the refusal names what was expected and shows the
 * start of what came (`must be a boolean, got "false"`), so a log says which verifier sent what.
 */
function Accepts(expected: string, accept: (value: unknown) => boolean): PropertyDecorator {
  return ValidateBy({
    name: 'verifierStatusField',
    validator: {
      validate: accept,
      defaultMessage: (args) => `must be ${expected}, got ${String(JSON.stringify(args?.value)).slice(0, 40)}`,
    },
  });
}

const isText = (value: unknown): boolean => typeof value === 'string';
const isBoolean = (value: unknown): boolean => typeof value === 'boolean';
const isNonNegativeInteger = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 0;
const isNonNegativeNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value >= 0;
const isPositiveNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

/** Keylime's `attestation_period` text (`"2s"`, `"0.5s"`; API ≥ 2.5). */
const PERIOD = /^(\d{1,9}(?:\.\d{1,6})?)s$/;

/** `attestation_period` in seconds: a positive number, or Keylime's text form; undefined for anything else. */
function periodSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return isPositiveNumber(value) ? value : undefined;
  }
  const match = typeof value === 'string' ? PERIOD.exec(value.trim()) : null;
  const seconds = match === null ? undefined : Number(match[1]);
  return seconds !== undefined && seconds > 0 ? seconds : undefined;
}

/**
 * `GET /v2.x/agents/{id}` results (spec §4.2) as the keylime driver and the tenant's `status` read them from any verifier: ours, or a
 * Keylime release. Every field is optional, because releases differ in what they return (a push agent
 * has no `operational_state`, `attestation_status` and `attestation_period` came with API 2.5,
 * `trusted` and `freshness_bound` are ironlime's); null counts as absent. A field that is present
 * with the wrong type (`trusted: "false"`, `operational_state: "3"`) is refused, never read as
 * absent. Types are checked strictly: a number in a string is not a number.
 */
class VerifierStatusReply {
  /** The agent the reply is about, when the verifier says (it must be the one asked about). */
  @IsOptional()
  @Accepts('a string', isText)
  agent_id?: string | null;

  /** Spec §6.1 state code. */
  @IsOptional()
  @Accepts('a state code', isNonNegativeInteger)
  operational_state?: number | null;

  @IsOptional()
  @Accepts('a count', isNonNegativeInteger)
  attestation_count?: number | null;

  /** `PASS`, `FAIL`, `PENDING`, `TIMEOUT`: left as text, judged by `judgeVerifierStatus`. */
  @IsOptional()
  @Accepts('a string', isText)
  attestation_status?: string | null;

  @IsOptional()
  @Accepts('a string', isText)
  last_event_id?: string | null;

  @IsOptional()
  @Accepts('an integer', isNonNegativeInteger)
  severity_level?: number | null;

  /** Unix seconds; ours may carry a fraction. */
  @IsOptional()
  @Accepts('unix seconds', isNonNegativeNumber)
  last_successful_attestation?: number | null;

  @IsOptional()
  @Accepts('a period such as "2s"', (value) => periodSeconds(value) !== undefined)
  attestation_period?: string | number | null;

  /** ironlime: a PASS no older than `freshness_bound`. */
  @IsOptional()
  @Accepts('a boolean', isBoolean)
  trusted?: boolean | null;

  /** ironlime: seconds. */
  @IsOptional()
  @Accepts('a positive number of seconds', isPositiveNumber)
  freshness_bound?: number | null;

  @IsOptional()
  @Accepts('a string', isText)
  meta_data?: string | null;
}

/**
 * The verifier's status reply of `agentId` as the view `judgeVerifierStatus` reads: validated with `VerifierStatusReply`,
 * absent fields given neutral values (no state, no successes, no metadata). Unknown fields are dropped.
 *
 * @throws BadRemoteReplyError when the reply is not an object, a field has the wrong type, or its
 *   `agent_id` names another agent: the
 *   service's fault, not the node's — the driver's operations report it as AttestationServiceUnavailable
 *   (fail closed: a status the driver cannot read is never trusted, nor does it block a removal).
 */
export function verifierAgentOf(agentId: string, results: unknown): VerifierAgent {
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
