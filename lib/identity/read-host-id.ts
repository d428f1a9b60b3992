import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { FileReadError, readRegularFileSync } from '../files/regular-file.js';
import { parseSystemUuid, type HostId, type HostIdKind } from './host-id.js';
import { chooseHostMac, type NetInterface } from './mac-choice.js';

/** A sysfs attribute is at most one page (and reports that as its size). */
const SYSFS_ATTRIBUTE_BYTES = 4096;

/** `/proc/net/route` at 128 bytes a route: room for some 130 000 routes in the main table. */
const MAX_ROUTE_TABLE_BYTES = 16 * 1024 * 1024;

/**
 * Reads this machine's host id. `root` is the file-system root (`/`; tests pass a fake tree).
 * - `sys-uuid`: `/sys/class/dmi/id/product_uuid` (readable by root only);
 * - `mac`: the MAC `chooseHostMac` picks among `/sys/class/net/*` — a physical interface (one with a
 *   `device`) before a virtual one, a universally administered MAC before a locally administered
 *   one, then the MAC of the default route (`/proc/net/route`), then the lowest name.
 *
 * Each file is read without blocking, up to a bound (`readRegularFileSync`): a FIFO or a device put in
 * their place cannot hold the start; an interface whose `address` cannot be read is passed over.
 *
 * @throws InvalidParameterValue naming what is missing or unusable.
 */
export function readHostId(kind: HostIdKind, root = '/'): HostId {
  if (kind === 'sys-uuid') {
    const file = path.join(root, 'sys/class/dmi/id/product_uuid');
    if (!existsSync(file)) throw new InvalidParameterValue('host id', `${file} does not exist (no SMBIOS, or not readable)`);
    return parseSystemUuid(readIdFile(file, SYSFS_ATTRIBUTE_BYTES));
  }
  const chosen = chooseHostMac(netInterfaces(root));
  if (chosen === undefined) throw new InvalidParameterValue('host id', 'no network interface with a usable MAC address');
  return chosen;
}

/** This machine's interfaces (`/sys/class/net/*`) as `chooseHostMac` takes them. */
function netInterfaces(root: string): NetInterface[] {
  const netDir = path.join(root, 'sys/class/net');
  if (!existsSync(netDir)) return [];
  const route = defaultRouteInterface(root);
  return readdirSync(netDir).map((name) => ({
    name,
    address: readAddress(path.join(netDir, name, 'address')),
    physical: existsSync(path.join(netDir, name, 'device')),
    defaultRoute: name === route,
  }));
}

/** An interface's `address`, or undefined when it is missing or cannot be read (passed over, as an unusable MAC is). */
function readAddress(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return readIdFile(file, SYSFS_ATTRIBUTE_BYTES);
  } catch {
    return undefined;
  }
}

/** The text of one of the files the host id is read from. @throws InvalidParameterValue naming the file and why */
function readIdFile(file: string, maxBytes: number): string {
  try {
    return readRegularFileSync(file, { setting: 'host id', maxBytes }).toString('utf8');
  } catch (error) {
    if (error instanceof FileReadError) throw new InvalidParameterValue('host id', error.detail, { cause: error });
    throw error;
  }
}

/** The interface of the IPv4 default route (destination 00000000), if any. */
function defaultRouteInterface(root: string): string | undefined {
  const file = path.join(root, 'proc/net/route');
  if (!existsSync(file)) return undefined;
  const rows = readIdFile(file, MAX_ROUTE_TABLE_BYTES).split('\n').slice(1).map((line) => line.trim().split(/\s+/));
  return rows.find((fields) => fields[1] === '00000000')?.[0];
}
