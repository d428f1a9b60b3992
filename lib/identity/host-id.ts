import { createHash } from 'node:crypto';
import { InvalidParameterValue } from '../../interfaces/errors.js';

/** Where a host id came from. */
export type HostIdKind = 'sys-uuid' | 'mac';

export interface HostId {
  readonly kind: HostIdKind;
  /** Normalised: lowercase UUID with dashes, or lowercase colon-separated MAC. */
  readonly value: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * SMBIOS system UUIDs that firmware writes when nobody set one: the same on many machines, so they
 * identify nothing (Elemental refuses empty, "Not …", "Unspecified" and "None" for the same reason).
 */
const PLACEHOLDER_UUIDS = new Set([
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '03000200-0400-0500-0006-000700080009',
  '12345678-1234-5678-90ab-cddeefaabbcc',
]);
const PLACEHOLDER_TEXT = /^(not\b|unspecified|none|to be filled|default string|n\/a)/i;

/** Checks and normalises an SMBIOS system UUID (`/sys/class/dmi/id/product_uuid`). */
export function parseSystemUuid(text: string): HostId {
  const trimmed = text.trim();
  if (trimmed === '' || PLACEHOLDER_TEXT.test(trimmed)) {
    throw new InvalidParameterValue('host id', `the SMBIOS system UUID is not set ("${trimmed}")`);
  }
  const value = trimmed.toLowerCase();
  if (!UUID.test(value)) throw new InvalidParameterValue('host id', `not a UUID: "${trimmed.slice(0, 64)}"`);
  if (PLACEHOLDER_UUIDS.has(value)) throw new InvalidParameterValue('host id', `${value} is a firmware placeholder shared by many machines`);
  return { kind: 'sys-uuid', value };
}

/** Checks and normalises a MAC address: not all-zero, not broadcast, not multicast. */
export function parseMacAddress(text: string): HostId {
  const value = text.trim().toLowerCase().replaceAll('-', ':');
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(value)) throw new InvalidParameterValue('host id', `not a MAC address: "${text.slice(0, 64)}"`);
  const first = Number.parseInt(value.slice(0, 2), 16);
  if (value === '00:00:00:00:00:00' || value === 'ff:ff:ff:ff:ff:ff' || (first & 1) === 1) {
    throw new InvalidParameterValue('host id', `${value} does not identify one interface`);
  }
  return { kind: 'mac', value };
}

/** The registrar's key for a host id (as Elemental's `machineHash`): sha256 hex of `kind:value`. */
export function hostIdHash(id: HostId): string {
  return createHash('sha256').update(`${id.kind}:${id.value}`).digest('hex');
}
