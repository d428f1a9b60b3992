import type { UntrustedImaEntry } from './ima-entry.js';
import { LEGACY_NAME_FIELD_SIZE } from './template-data.js';

/**
 * Writes entries as a binary measurement list, the inverse of `parseImaBinaryList` (layout in
 * binary-list-parser.ts). Used to serve a binary list from a simulated node and in round-trip tests.
 */
export function encodeImaBinaryList(entries: readonly UntrustedImaEntry[]): Uint8Array {
  const parts: Buffer[] = [];
  const u32 = (value: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return b;
  };
  for (const entry of entries) {
    const name = Buffer.from(entry.templateName, 'latin1');
    parts.push(u32(entry.pcr), entry.templateHash, u32(name.length), name);
    if (entry.templateName === 'ima') {
      const digest = entry.templateData.subarray(0, entry.templateData.length - LEGACY_NAME_FIELD_SIZE);
      const field = entry.templateData.subarray(digest.length);
      const nul = field.indexOf(0);
      const path = field.subarray(0, nul < 0 ? field.length : nul);
      parts.push(digest, u32(path.length), path);
    } else {
      parts.push(u32(entry.templateData.length), entry.templateData);
    }
  }
  return Buffer.concat(parts);
}
