import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { enrolledNodeOf } from './agent-enrolment.js';
import { driverInfoWithLocation, type AgentLocation, type DriverInfoWriter } from './agent-locator.js';
import type { VerifierAgent } from '../../lib/verifier/verifier-status-view.js';

/**
 * Why the verifier's enrolment of `agentId` is not this node's, or undefined when it is. An agent is
 * bound to the node that enrolled it (the node uuid the driver writes into the enrolment's
 * `metadata`, TPM and liveness enrolments alike): an enrolment made for another node, or not by this
 * driver, is neither reused, judged, replaced nor removed for this node — two nodes whose
 * `driver_info` name one agent must not share its verdict. `kind` says which enrolment it is.
 */
export function foreignEnrolment(enrolled: Pick<VerifierAgent, 'metaData'>, nodeUuid: string, agentId: string, kind = 'enrolled with the verifier'): string | undefined {
  const owner = enrolledNodeOf(enrolled.metaData);
  if (owner === nodeUuid) {
    return undefined;
  }
  const whose = owner === undefined ? 'not by this driver for a node' : `for node ${owner}`;
  return `agent ${agentId} is ${kind} ${whose}, not for node ${nodeUuid}: refused`;
}

/**
 * Why `agentId` cannot be this node's because another node's `driver_info` names it, or undefined.
 * Undefined too when the node store cannot say (no store, or one without `nodesNamingAgent`): the
 * enrolment's binding (`foreignEnrolment`) still keeps the two verdicts apart.
 */
export async function agentClaimedElsewhere(nodes: DriverInfoWriter | undefined, agentId: string, nodeUuid: string): Promise<string | undefined> {
  const others = ((await nodes?.nodesNamingAgent?.(agentId)) ?? []).filter((uuid) => uuid !== nodeUuid);
  return others.length === 0 ? undefined : `agent ${agentId} is already named by the driver_info of node ${others.join(', ')}, not only node ${nodeUuid}: refused`;
}

/**
 * Writes `location` into the node's `driver_info`. `agentClaimedElsewhere` is checked first by the
 * caller, but two nodes located at the same moment both pass it; `NodeStore` then refuses the second
 * write by its unique index on `driver_info.keylime_agent_uuid` (`InvalidParameterValue` on that
 * field). That refusal is reported like the check's, naming the node that won.
 *
 * @throws InvalidParameterValue ('agent location uuid') when another node names the agent.
 */
export async function storeLocation(nodes: DriverInfoWriter, node: Node, location: AgentLocation): Promise<Node> {
  try {
    return await nodes.updateNode(node.uuid, { driverInfo: driverInfoWithLocation(node.driverInfo, location) });
  } catch (error) {
    if (!(error instanceof InvalidParameterValue && error.field === 'driver_info.keylime_agent_uuid')) throw error;
    const claimed = await agentClaimedElsewhere(nodes, location.uuid, node.uuid);
    throw new InvalidParameterValue('agent location uuid', claimed ?? `agent ${location.uuid} is already named by the driver_info of another node: refused`, { cause: error });
  }
}
