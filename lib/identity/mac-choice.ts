import { parseMacAddress, type HostId } from './host-id.js';

/** One network interface, as the host id's MAC choice sees it (Linux: `/sys/class/net/<name>`). */
export interface NetInterface {
  readonly name: string;
  /** Its MAC as read (`address`); undefined when it could not be read. */
  readonly address: string | undefined;
  /**
   * Backed by a device (`/sys/class/net/<name>/device` exists): a NIC, a VM's virtio NIC. A bridge,
   * veth, tun/tap, docker0, virbr0, a bond or a VLAN has none.
   */
  readonly physical: boolean;
  /** The interface of the IPv4 default route. */
  readonly defaultRoute: boolean;
}

/** The locally administered bit (bit 1 of the first octet): a MAC software chose — a bridge's, a VM's, a randomised Wi-Fi one — not the maker's. */
function locallyAdministered(mac: string): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 2) === 2;
}

/** A candidate's rank: lower sorts first. */
interface Ranked {
  readonly id: HostId;
  readonly name: string;
  readonly key: readonly number[];
}

/**
 * The MAC the host id `mac` is read as, from this machine's interfaces; undefined when none has a
 * usable MAC (`parseMacAddress`: all-zero — the loopback's —, broadcast and multicast ones are
 * skipped, and so is an address that could not be read). Among the rest, in this order:
 * 1. a physical interface before a virtual one (a bridge, veth, docker0, virbr0, tun/tap), whose MAC
 *    software chose and may change, or another host shares;
 * 2. a universally administered MAC before a locally administered one;
 * 3. the default route's MAC: that of its interface, or of a NIC under it with the same MAC (a bond's
 *    port, a VLAN's parent, a bridge's port whose MAC the bridge took);
 * 4. the lowest name (code-unit order, not the locale's).
 * The same list gives the same MAC whatever order it comes in. A virtual interface is chosen only
 * when there is no physical one with a usable MAC (a container, whose eth0 is a veth). Rule 3 looks at
 * the MAC, not the name: before this rule the default route's interface was taken whatever it was, and
 * a host routed through a bond, a VLAN or a bridge holding a NIC's MAC keeps the host id it had then
 * (another id is another host to the registrar, which refuses it for an activated agent).
 */
export function chooseHostMac(interfaces: readonly NetInterface[]): HostId | undefined {
  const usable: { readonly candidate: NetInterface; readonly id: HostId }[] = [];
  for (const candidate of interfaces) {
    if (candidate.address === undefined) continue;
    try {
      usable.push({ candidate, id: parseMacAddress(candidate.address) });
    } catch {
      continue;
    }
  }
  const routeMacs = new Set(usable.filter(({ candidate }) => candidate.defaultRoute).map(({ id }) => id.value));
  const ranked: Ranked[] = usable.map(({ candidate, id }) => ({
    id,
    name: candidate.name,
    key: [candidate.physical ? 0 : 1, locallyAdministered(id.value) ? 1 : 0, routeMacs.has(id.value) ? 0 : 1],
  }));
  ranked.sort((a, b) => compareKeys(a.key, b.key) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return ranked[0]?.id;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i += 1) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}
