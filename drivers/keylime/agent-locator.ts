import { InvalidParameterValue } from '../../interfaces/errors.js';
import type { DriverInfo, Node } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import { HOST_ADDRESS_MESSAGE, isHostAddress } from '../../lib/http/host-address.js';
import { isKeylimeAgentId } from '../../lib/http/validators.js';

/**
 * Where a node's Keylime agent is, as the ramdisk reports it (the Ironic spec has the ramdisk agent pass
 * its Keylime agent's uuid, address and port to the conductor). `address` and `port` may be left out:
 * the driver then uses what the agent registered at the registrar.
 */
export interface AgentLocation {
  readonly uuid: string;
  readonly address?: string;
  readonly port?: number;
}

/**
 * A hook the orchestrator gives the driver (option `agentLocator`): asked by `startAttestation`,
 * `validateSecurityStatus` and `trustLevel`. When the node's `driver_info` has no `keylime_agent_uuid`
 * yet, resolve to the location, or `undefined` when the agent is not known yet (the call then fails with
 * `MissingParameterValue`). When it has one, a report naming another agent is refused
 * (`InvalidParameterValue`); `undefined` or a locator that throws leaves the stored agent in use.
 */
export type AgentLocator = (task: Task) => Promise<AgentLocation | undefined>;

/**
 * What the driver needs to store a location back into a node: `NodeStore` satisfies it. Kept structural
 * so the driver does not depend on `lib/provisioning`.
 */
export interface DriverInfoWriter {
  updateNode(uuid: string, changes: { readonly driverInfo: DriverInfo }): Promise<Node>;
  /**
   * The uuids of the nodes whose `driver_info` names this agent. When given (`NodeStore` does), the
   * driver refuses an agent another node already names. The check alone leaves a race (two nodes
   * located at once); `NodeStore` closes it with a unique index, and `updateNode` then throws
   * `InvalidParameterValue` for field `driver_info.keylime_agent_uuid`. Another store should do the same.
   */
  nodesNamingAgent?(agentId: string): Promise<readonly string[]>;
}

/**
 * Checks a location from the ramdisk (it is caller input, as untrusted as `driver_info`). The uuid takes
 * the rule of `driver_info.keylime_agent_uuid` (`isKeylimeAgentId`): a pattern of its own here took
 * "." and ".." (path segments a URL drops: `GET /agents/.` asked the verifier's list) and `__proto__`,
 * and a stored one made every later `validate` of the node fail.
 *
 * @throws InvalidParameterValue naming the bad part.
 */
export function checkAgentLocation(location: AgentLocation): AgentLocation {
  if (typeof location.uuid !== 'string' || !isKeylimeAgentId(location.uuid)) {
    throw new InvalidParameterValue('agent location uuid', 'must be an agent id of letters, digits, "_", "." and "-" (at most 80)');
  }
  if (location.address !== undefined && (typeof location.address !== 'string' || !isHostAddress(location.address))) {
    throw new InvalidParameterValue('agent location address', HOST_ADDRESS_MESSAGE);
  }
  if (location.port !== undefined && (!Number.isInteger(location.port) || location.port < 1 || location.port > 65535)) {
    throw new InvalidParameterValue('agent location port', 'must be an integer from 1 to 65535');
  }
  return location;
}

/**
 * `driver_info` with the location merged in (`keylime_agent_uuid`, `keylime_agent_address`,
 * `keylime_agent_port`); fields the location leaves out are removed, so a stale address never
 * outlives a new uuid.
 */
export function driverInfoWithLocation(driverInfo: DriverInfo, location: AgentLocation): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...driverInfo, keylime_agent_uuid: location.uuid };
  delete merged['keylime_agent_address'];
  delete merged['keylime_agent_port'];
  if (location.address !== undefined) {
    merged['keylime_agent_address'] = location.address;
  }
  if (location.port !== undefined) {
    merged['keylime_agent_port'] = location.port;
  }
  return merged;
}
