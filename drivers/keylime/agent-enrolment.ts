import { AttestationFailed, MissingParameterValue } from '../../interfaces/errors.js';
import type { Task } from '../../interfaces/task.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { httpsServiceUrl } from '../../lib/http/keylime-client.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import { agentContact, buildEnrolmentBody, buildPushEnrolmentBody } from '../../lib/tenant/enrolment-request.js';
import { checkAgentIdentity, checkedRegisteredIp, checkPushAgentIdentity } from '../../lib/tenant/identity-check.js';
import { showRegistrarAgent, type RegisteredAgent } from '../../lib/tenant/registrar-agents.js';
import type { VerifierEnrolmentBody } from '../../lib/verifier/verifier-client.js';
import type { AgentLocation } from './agent-locator.js';
import type { EnrolmentPolicy } from './enrolment-policy.js';
import type { KeylimeConnection } from './keylime-connection.js';

/** Agent API version the verifier is told to use (the Rust keylime-agent's newest, spec §0.2). */
export const AGENT_API_VERSION = '2.6';
/** The key under which the driver keeps its policy fingerprint in the enrolment's `metadata`. */
const FINGERPRINT_KEY = 'ironlime_policy_fingerprint';

export interface EnrolAgentInput {
  readonly connection: KeylimeConnection;
  readonly location: AgentLocation;
  readonly policy: EnrolmentPolicy;
  readonly task: Task;
  readonly ekCheck: TenantEkCheckMode;
  readonly extraEkCaDirs: readonly string[];
  readonly timeoutMs: number;
  /** `push`: the agent attests itself; enrolled without address or identity quote (spec §10.1). */
  readonly mode: 'pull' | 'push';
}

/**
 * What the Keylime tenant's `add` does before and at enrolment (spec §8 steps 1, 4 and 6), without
 * payload delivery (no U/V: the driver attests, it provisions no secret): reads the agent from the
 * registrar and checks its EK certificate, asks the agent for an identity quote and verifies it against
 * the registrar's AK (with PCR 16 binding its key), then enrols it with the verifier using the AK and
 * mTLS certificate of THAT registrar record — the same data the identity check trusted (Keylime
 * CVE-2022-1053 came from letting them differ).
 *
 * @throws AttestationFailed when the agent is not registered or activated, or its identity check fails.
 */
export async function enrolAgent(input: EnrolAgentInput): Promise<void> {
  const { connection, location } = input;
  const { cert, key } = connection.tls;
  if (cert === undefined || key === undefined) {
    throw new MissingParameterValue(['keylime_tls_cert', 'keylime_tls_key']);
  }
  if (input.mode === 'push') {
    await enrolPushAgent(input);
    return;
  }
  let verdict;
  try {
    const agentUrl = await contactUrl(input);
    verdict = await checkAgentIdentity({
      registrar: connection.registrar,
      agentId: location.uuid,
      tls: { cert, key },
      ekCheck: input.ekCheck,
      extraEkCaDirs: input.extraEkCaDirs,
      timeoutMs: input.timeoutMs,
      ...(agentUrl === undefined ? {} : { agentUrl }),
    });
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404 && error.url.includes('/agents/')) {
      throw new AttestationFailed([`agent ${location.uuid} is not registered (or not activated) at the registrar`], [], { cause: error });
    }
    throw error;
  }
  if (!verdict.valid) {
    throw new AttestationFailed([`identity check of agent ${location.uuid} failed (${verdict.check}): ${verdict.reason}`]);
  }
  for (const warning of verdict.warnings) {
    input.task.logger.warn({ node: input.task.node.uuid, agent: location.uuid }, warning);
  }
  await connection.verifier.addAgent(location.uuid, driverEnrolmentBody(verdict.agent, location, input.policy, input.task.node.uuid));
}

/**
 * A push agent (spec §10.1): the registrar record and EK certificate are checked as for a pull agent;
 * there is no identity quote to ask for (the agent opens no port) — the verifier's session proof of
 * possession binds every attestation to the registered AK instead.
 */
async function enrolPushAgent(input: EnrolAgentInput): Promise<void> {
  const { connection, location } = input;
  let verdict;
  try {
    verdict = await checkPushAgentIdentity({ registrar: connection.registrar, agentId: location.uuid, ekCheck: input.ekCheck, extraEkCaDirs: input.extraEkCaDirs });
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404 && error.url.includes('/agents/')) {
      throw new AttestationFailed([`agent ${location.uuid} is not registered (or not activated) at the registrar`], [], { cause: error });
    }
    throw error;
  }
  if (!verdict.valid) {
    throw new AttestationFailed([`identity check of push agent ${location.uuid} failed (${verdict.check}): ${verdict.reason}`]);
  }
  for (const warning of verdict.warnings) {
    input.task.logger.warn({ node: input.task.node.uuid, agent: location.uuid }, warning);
  }
  const metadata = { [FINGERPRINT_KEY]: input.policy.fingerprint, node: input.task.node.uuid };
  await connection.verifier.addAgent(location.uuid, buildPushEnrolmentBody(verdict.agent, input.policy.policies, metadata));
}

/**
 * The enrolment request the driver sends, from the tenant's one builder (`buildEnrolmentBody`): no V
 * (no payload), the agent reached where `driver_info` says or else where it registered, and the
 * policy fingerprint, node uuid and (from ironlime's registrar) trust level in `metadata`.
 *
 * @throws InvalidParameterValue for an agent without an mTLS certificate or a contact address.
 */
export function driverEnrolmentBody(agent: RegisteredAgent, location: AgentLocation, policy: EnrolmentPolicy, nodeUuid: string): VerifierEnrolmentBody {
  const given = { ...(location.address === undefined ? {} : { ip: location.address }), ...(location.port === undefined ? {} : { port: location.port }) };
  return buildEnrolmentBody(
    {
      agent,
      ...agentContact(agent, given),
      v: null,
      supportedVersion: AGENT_API_VERSION,
      // The registrar's trust level travels in Keylime's free `metadata`, so the verifier's status shows it.
      metadata: { [FINGERPRINT_KEY]: policy.fingerprint, node: nodeUuid, ...(agent.trustLevel === undefined ? {} : { trust_level: agent.trustLevel }) },
    },
    policy.policies,
  );
}

/** The policy fingerprint stored in an enrolment's `metadata`, or undefined (not enrolled by this driver). */
export function fingerprintOf(metaData: string): string | undefined {
  return metadataString(metaData, FINGERPRINT_KEY);
}

/** The node uuid an enrolment's `metadata` names, or undefined (not enrolled by this driver). */
export function enrolledNodeOf(metaData: string): string | undefined {
  return metadataString(metaData, 'node');
}

function metadataString(metaData: string, key: string): string | undefined {
  try {
    const value = JSON.parse(metaData) as unknown;
    const field = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
    return typeof field === 'string' ? field : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where to reach the agent when `driver_info` names it: address and port from there, the part left out
 * from the registrar record. Undefined when neither is given (the identity check then uses the record).
 */
async function contactUrl(input: EnrolAgentInput): Promise<string | undefined> {
  const { address, port } = input.location;
  if (address === undefined && port === undefined) {
    return undefined;
  }
  const registered = address !== undefined && port !== undefined ? undefined : await showRegistrarAgent(input.connection.registrar, input.location.uuid);
  const ip = address ?? registered?.ip ?? null;
  const contactPort = port ?? registered?.port ?? null;
  if (ip === null || contactPort === null) {
    return undefined;
  }
  return httpsServiceUrl(address ?? checkedRegisteredIp(input.location.uuid, ip), contactPort);
}
