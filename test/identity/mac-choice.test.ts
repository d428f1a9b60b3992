import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chooseHostMac, type NetInterface } from '../../lib/identity/mac-choice.js';
import { readHostId } from '../../lib/identity/read-host-id.js';

/** An interface of the fake list: virtual and off the default route unless said. */
function nic(name: string, address: string | undefined, options: { physical?: boolean; defaultRoute?: boolean } = {}): NetInterface {
  return { name, address, physical: options.physical ?? false, defaultRoute: options.defaultRoute ?? false };
}

/** Every order of `items` (a handful: n! lists). */
function orders<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => orders([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

describe('identity: the MAC a host id `mac` is read as', () => {
  /** A host running containers and VMs: the bridges, veths and taps, one of them on the default route. */
  const busyHost = [
    nic('lo', '00:00:00:00:00:00'),
    nic('docker0', '02:42:ac:11:00:01'),
    nic('veth1a2b3c', 'a6:1f:00:00:00:02'),
    nic('virbr0', '52:54:00:12:34:56'),
    nic('br0', '00:1b:21:aa:bb:02', { defaultRoute: true }),
    nic('tap0', 'fe:54:00:00:00:03'),
    nic('wlp2s0', '1a:2b:3c:4d:5e:6f', { physical: true }),
    nic('eno2', '00:1b:21:aa:bb:02', { physical: true }),
    nic('eno1', '00:1b:21:aa:bb:01', { physical: true }),
  ];

  it('prefers a physical interface with a universal MAC over a bridge on the default route, a randomised Wi-Fi MAC, docker0 and veths', () => {
    // br0 took the MAC of its port eno2: the host keeps the id it had when the bridge's MAC was read.
    expect(chooseHostMac(busyHost)?.value).to.equal('00:1b:21:aa:bb:02');
    const ownBridgeMac = busyHost.map((item) => (item.name === 'br0' ? nic('br0', '5a:11:22:33:44:55', { defaultRoute: true }) : item));
    expect(chooseHostMac(ownBridgeMac)?.value).to.equal('00:1b:21:aa:bb:01');
  });

  it('among physical universal ones takes the default route\'s, else the lowest name', () => {
    const physical = [nic('eno2', '00:1b:21:aa:bb:02', { physical: true }), nic('eno1', '00:1b:21:aa:bb:01', { physical: true })];
    expect(chooseHostMac(physical)?.value).to.equal('00:1b:21:aa:bb:01');
    const routed = [nic('eno2', '00:1b:21:aa:bb:02', { physical: true, defaultRoute: true }), nic('eno1', '00:1b:21:aa:bb:01', { physical: true })];
    expect(chooseHostMac(routed)?.value).to.equal('00:1b:21:aa:bb:02');
  });

  it('takes a physical interface\'s locally administered MAC only when no physical one has a universal MAC, and never a virtual one before it', () => {
    const list = [nic('docker0', '00:1b:21:00:00:09'), nic('wlp2s0', '1a:2b:3c:4d:5e:6f', { physical: true })];
    expect(chooseHostMac(list)?.value).to.equal('1a:2b:3c:4d:5e:6f');
  });

  it('falls back to a virtual interface when there is no physical one (a container), universal MACs first, then the default route', () => {
    expect(chooseHostMac([nic('lo', '00:00:00:00:00:00'), nic('eth0', '02:42:ac:11:00:02', { defaultRoute: true }), nic('eth1', '02:42:ac:12:00:02')])?.value).to.equal('02:42:ac:11:00:02');
    expect(chooseHostMac([nic('eth0', '02:42:ac:11:00:02', { defaultRoute: true }), nic('eth1', '00:16:3e:00:00:01')])?.value).to.equal('00:16:3e:00:00:01');
  });

  it('skips the loopback, zero, broadcast, multicast, malformed and unreadable addresses; none left is undefined', () => {
    const unusable = [
      nic('lo', '00:00:00:00:00:00', { physical: true }),
      nic('eno1', 'ff:ff:ff:ff:ff:ff', { physical: true }),
      nic('eno2', '01:00:5e:00:00:01', { physical: true }),
      nic('eno3', 'not a mac', { physical: true }),
      nic('eno4', undefined, { physical: true }),
      nic('wg0', '', { defaultRoute: true }),
    ];
    expect(chooseHostMac(unusable)).to.equal(undefined);
    expect(chooseHostMac([...unusable, nic('tun0', '00:1b:21:aa:bb:07')])?.value).to.equal('00:1b:21:aa:bb:07');
  });

  it('keeps the MAC the default route had before when a NIC holds it: a bond or VLAN over NICs beside an unused onboard port', () => {
    // Before, the default route's interface was taken whatever it was: these hosts were known by the
    // MAC of the bond (its first port's) and of the VLAN (its parent's); another MAC is another host id,
    // which the registrar refuses for an activated agent.
    const bonded = [
      nic('eno1', '00:1b:21:aa:bb:01', { physical: true }),
      nic('ens1f0', '3c:fd:fe:00:00:10', { physical: true }),
      nic('ens1f1', '3c:fd:fe:00:00:10', { physical: true }),
      nic('bond0', '3c:fd:fe:00:00:10', { defaultRoute: true }),
    ];
    expect(chooseHostMac(bonded)?.value).to.equal('3c:fd:fe:00:00:10');
    const vlan = [
      nic('eno1', '00:1b:21:aa:bb:01', { physical: true }),
      nic('eno2', '00:1b:21:aa:bb:02', { physical: true }),
      nic('eno2.100', '00:1b:21:aa:bb:02', { defaultRoute: true }),
    ];
    expect(chooseHostMac(vlan)?.value).to.equal('00:1b:21:aa:bb:02');
  });

  it('gives the same MAC whatever order the interfaces are listed in', () => {
    const list = [busyHost[3], busyHost[4], busyHost[6], busyHost[7], busyHost[8]].filter((item): item is NetInterface => item !== undefined);
    const chosen = new Set(orders(list).map((order) => chooseHostMac(order)?.value));
    expect([...chosen]).to.deep.equal(['00:1b:21:aa:bb:02']);
  });

  it('reads /sys/class/net: a bridge on the default route is passed over for the NIC with a device', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-mac-'));
    try {
      const put = (file: string, text: string): void => {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), text);
      };
      put('sys/class/net/lo/address', '00:00:00:00:00:00\n');
      put('sys/class/net/br0/address', 'fe:54:00:aa:bb:cc\n');
      put('sys/class/net/docker0/address', '02:42:ac:11:00:01\n');
      put('sys/class/net/eno1/address', '00:1b:21:aa:bb:01\n');
      put('sys/class/net/eno1/device/vendor', '0x8086\n');
      put('proc/net/route', 'Iface\tDestination\tGateway\nbr0\t00000000\t0102A8C0\n');
      expect(readHostId('mac', dir).value).to.equal('00:1b:21:aa:bb:01');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
