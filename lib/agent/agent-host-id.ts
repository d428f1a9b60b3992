import { InvalidConfig, IronlimeError } from '../../interfaces/errors.js';
import { parseMacAddress, parseSystemUuid, type HostId } from '../identity/host-id.js';
import { readHostId } from '../identity/read-host-id.js';

/**
 * The agent's host id from `AgentConfig.hostId` (docs/identity.md): given outright (`mac:<address>`,
 * `sys-uuid:<uuid>`), read from this machine (`mac`, `sys-uuid`), or by default the SMBIOS UUID and
 * else the MAC of the main interface. `root` is the file-system root (tests pass a fake tree).
 *
 * @throws InvalidConfig naming what is missing or unusable.
 */
export function agentHostId(setting: string | undefined, root = '/'): HostId {
  try {
    if (setting === undefined) {
      try {
        return readHostId('sys-uuid', root);
      } catch {
        return readHostId('mac', root);
      }
    }
    const separator = setting.indexOf(':');
    if (separator < 0) return readHostId(setting === 'mac' ? 'mac' : 'sys-uuid', root);
    const value = setting.slice(separator + 1);
    return setting.startsWith('mac:') ? parseMacAddress(value) : parseSystemUuid(value);
  } catch (error) {
    if (!(error instanceof IronlimeError)) throw error;
    throw new InvalidConfig('agent.hostId', error.message, { cause: error });
  }
}
