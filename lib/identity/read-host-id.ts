import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { parseMacAddress, parseSystemUuid, type HostId, type HostIdKind } from './host-id.js';

/**
 * Reads this machine's host id. `root` is the file-system root (`/`; tests pass a fake tree).
 * - `sys-uuid`: `/sys/class/dmi/id/product_uuid` (readable by root only);
 * - `mac`: the interface of the default route (`/proc/net/route`), else the lowest non-virtual
 *   interface with a usable MAC (`/sys/class/net/*`, skipping `/sys/devices/virtual/net`).
 *
 * @throws InvalidParameterValue naming what is missing or unusable.
 */
export function readHostId(kind: HostIdKind, root = '/'): HostId {
  if (kind === 'sys-uuid') {
    const file = path.join(root, 'sys/class/dmi/id/product_uuid');
    if (!existsSync(file)) throw new InvalidParameterValue('host id', `${file} does not exist (no SMBIOS, or not readable)`);
    return parseSystemUuid(readFileSync(file, 'utf8'));
  }
  const netDir = path.join(root, 'sys/class/net');
  const candidates = [defaultRouteInterface(root), ...physicalInterfaces(root)].filter((name): name is string => name !== undefined);
  for (const name of candidates) {
    const addressFile = path.join(netDir, name, 'address');
    if (!existsSync(addressFile)) continue;
    try {
      return parseMacAddress(readFileSync(addressFile, 'utf8'));
    } catch {
      // an interface without a usable MAC (all zeros, multicast): try the next one
    }
  }
  throw new InvalidParameterValue('host id', 'no network interface with a usable MAC address');
}

/** The interface of the IPv4 default route (destination 00000000), if any. */
function defaultRouteInterface(root: string): string | undefined {
  const file = path.join(root, 'proc/net/route');
  if (!existsSync(file)) return undefined;
  const rows = readFileSync(file, 'utf8').split('\n').slice(1).map((line) => line.trim().split(/\s+/));
  return rows.find((fields) => fields[1] === '00000000')?.[0];
}

/** Interfaces that are not virtual (lo, bridges, veth…), sorted by name. */
function physicalInterfaces(root: string): string[] {
  const netDir = path.join(root, 'sys/class/net');
  if (!existsSync(netDir)) return [];
  const virtualDir = path.join(root, 'sys/devices/virtual/net');
  const virtual = new Set(existsSync(virtualDir) ? readdirSync(virtualDir) : []);
  return readdirSync(netDir).filter((name) => !virtual.has(name)).sort();
}
