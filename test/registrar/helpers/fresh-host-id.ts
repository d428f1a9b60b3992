import type { HostId } from '../../../lib/identity/host-id.js';

/** A MAC no other test uses (locally administered, unicast). */
export function freshHostId(): HostId {
  const bytes = [0x02, ...[...Array(5)].map(() => Math.floor(Math.random() * 256))];
  return { kind: 'mac', value: bytes.map((b) => b.toString(16).padStart(2, '0')).join(':') };
}
