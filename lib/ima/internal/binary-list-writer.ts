import { LittleEndianWriter } from '../../bytes/byte-writer.js';
import type { UntrustedImaEntry } from './ima-entry.js';
import { LEGACY_NAME_FIELD_SIZE } from './template-data.js';

/**
 * Writes entries as a binary measurement list, the inverse of `parseImaBinaryList` (layout in
 * binary-list-parser.ts). Used to serve a binary list from a simulated node and in round-trip tests.
 */
export function encodeImaBinaryList(entries: readonly UntrustedImaEntry[]): Uint8Array {
  const w = new LittleEndianWriter();
  for (const entry of entries) {
    const name = Buffer.from(entry.templateName, 'latin1');
    w.u32(entry.pcr).bytes(entry.templateHash).u32(name.length).bytes(name);
    if (entry.templateName === 'ima') {
      const digest = entry.templateData.subarray(0, entry.templateData.length - LEGACY_NAME_FIELD_SIZE);
      const field = entry.templateData.subarray(digest.length);
      const nul = field.indexOf(0);
      const path = field.subarray(0, nul < 0 ? field.length : nul);
      w.bytes(digest).u32(path.length).bytes(path);
    } else {
      w.u32(entry.templateData.length).bytes(entry.templateData);
    }
  }
  return w.finish();
}
