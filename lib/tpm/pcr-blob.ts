import { LittleEndianReader } from '../bytes/byte-reader.js';
import { LittleEndianWriter } from '../bytes/byte-writer.js';
import { TpmParseError } from '../bytes/parse-errors.js';
import { TPMU_HA_SIZE, algName, digestSize, resolveHash } from './constants.js';
import { bitmapFromPcrs, MAX_PCR_BANKS, MAX_SIZEOF_SELECT, pcrsFromBitmap, type PcrSelection } from './internal/pcr-selection.js';
import { digestSlotAt, DIGEST_LIST_BYTES, DIGEST_SLOT_BYTES, DIGEST_SLOTS, PcrValues, type DigestSlots } from './internal/pcr-values.js';

/**
 * The PCR file tpm2-tools writes (`tpm2_quote -o`, `tpm2_pcrread -o`) and Keylime agents send as the
 * third part of a quote string (keylime-protocol §3.2). It is a dump of in-memory C structs, so it is
 * LITTLE-endian and padded, unlike TPM marshalling:
 *
 * | TPML_PCR_SELECTION, 132 bytes: count u32, then 16 slots of | hash u16 | sizeofSelect u8 | pcrSelect[4] | pad u8 | |
 * | u32: number N of TPML_DIGEST that follow |
 * | N × TPML_DIGEST, 532 bytes each: count u32, then 8 slots of | size u16 | buffer[64] | |
 *
 * The digests, read in order, belong to the selected PCRs bank by bank (selection order), PCRs
 * ascending in each bank: that is the order TPM2_PCR_Read returns them (Part 3 §22.4).
 */

const SELECTION_SLOTS = 16;
/** tpm2-tools' TPML_DIGEST slot holds a TPM2B_DIGEST padded to the largest digest. */
const DIGEST_BUFFER = TPMU_HA_SIZE;

/** One bank's PCR values. */
export interface PcrBank {
  readonly hashAlg: number;
  /** PCR index → value, in ascending index order. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
}

/** A parsed PCR blob. The values are untrusted until a quote over them verifies (`verifyQuote`). */
export interface PcrBlob {
  readonly selection: readonly PcrSelection[];
  readonly untrustedBanks: readonly PcrBank[];
}

/** u16 little-endian at `at`; callers have bounds-checked the whole region through the reader. */
function le16(bytes: Uint8Array, at: number): number {
  return (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8);
}

function le32(bytes: Uint8Array, at: number): number {
  return (le16(bytes, at) | (le16(bytes, at + 2) << 16)) >>> 0;
}

// The two loops below read fixed-size regions whose length the reader has already checked (the
// quote verifier runs them for every quote, so they index the bytes directly rather than call the
// reader per field); every error still goes through the reader with its offset.

function readSelection(r: LittleEndianReader): PcrSelection[] {
  return r.struct('TPML_PCR_SELECTION', () => {
    const count = r.u32();
    if (count > MAX_PCR_BANKS) {
      throw r.error(`count ${count} exceeds ${MAX_PCR_BANKS}`);
    }
    const base = r.offset;
    r.skip(SELECTION_SLOTS * 8);
    const selection: PcrSelection[] = [];
    for (let i = 0; i < count; i += 1) {
      // | hash u16 | sizeofSelect u8 | pcrSelect[4] | pad u8 |; slots past count hold leftovers and are ignored
      const at = base + i * 8;
      const sizeofSelect = r.bytes[at + 2] ?? 0;
      if (sizeofSelect > MAX_SIZEOF_SELECT) {
        throw r.error(`pcrSelections[${i}].sizeofSelect ${sizeofSelect} exceeds ${MAX_SIZEOF_SELECT}`);
      }
      const bitmap = r.bytes.subarray(at + 3, at + 3 + sizeofSelect);
      selection.push({ hashAlg: le16(r.bytes, at), sizeofSelect, pcrs: pcrsFromBitmap(bitmap) });
    }
    return selection;
  });
}

/**
 * Checks the digest lists and answers where they start and how many digests they hold (no view per
 * digest: the values are read in place, `PcrValues`, and their sizes where they lie, `digestSlotAt`).
 */
function readDigests(r: LittleEndianReader): { readonly slots: DigestSlots; readonly count: number } {
  const lists = r.u32();
  if (lists * DIGEST_LIST_BYTES !== r.remaining) {
    throw r.error(`${lists} TPML_DIGEST(s) need ${lists * DIGEST_LIST_BYTES} byte(s), ${r.remaining} left`);
  }
  const base = r.offset;
  let digests = 0;
  // Only a list short of 8 digests with another after it needs each digest's offset written down.
  let offsets: number[] | undefined;
  for (let l = 0; l < lists; l += 1) {
    const list = base + l * DIGEST_LIST_BYTES;
    const count = le32(r.bytes, list);
    if (count > DIGEST_SLOTS) {
      throw r.error(`TPML_DIGEST[${l}].count ${count} exceeds ${DIGEST_SLOTS}`);
    }
    for (let i = 0; i < DIGEST_SLOTS; i += 1) {
      // | size u16 | buffer[64] |
      const at = list + 4 + i * DIGEST_SLOT_BYTES;
      const size = le16(r.bytes, at);
      if (size > DIGEST_BUFFER || (i < count) !== (size > 0)) {
        throw r.error(`TPML_DIGEST[${l}].digests[${i}] has size ${size} with count ${count}`);
      }
    }
    if (offsets === undefined && count < DIGEST_SLOTS && l + 1 < lists) {
      offsets = Array.from({ length: digests }, (_, d) => digestSlotAt({ listsAt: base }, d));
    }
    for (let i = 0; offsets !== undefined && i < count; i += 1) offsets.push(list + 4 + i * DIGEST_SLOT_BYTES);
    digests += count;
  }
  r.skip(lists * DIGEST_LIST_BYTES);
  return { slots: offsets === undefined ? { listsAt: base } : { offsets }, count: digests };
}

/**
 * Parses a tpm2-tools PCR blob. Checks the layout, that every selected bank is a hash we know, that
 * there is exactly one digest of the bank's size per selected PCR, and that nothing trails. Does NOT
 * check the values against anything: they are untrusted until `verifyQuote`. Throws `TpmParseError`.
 */
export function parsePcrBlob(bytes: Uint8Array): PcrBlob {
  const { selection, untrustedBanks } = parsePcrBlobInPlace(bytes.slice());
  return { selection, untrustedBanks: untrustedBanks.map((bank) => ({ hashAlg: bank.hashAlg, pcrs: new Map(bank.pcrs) })) };
}

/**
 * `parsePcrBlob` without the private copy: the PCR values alias `bytes`, and each bank's map reads them
 * where they lie (`PcrValues`: a view made only for a value read), not a `Map` of a view per PCR.
 */
export function parsePcrBlobInPlace(bytes: Uint8Array): PcrBlob {
  const r = new LittleEndianReader(bytes, TpmParseError);
  const { selection, digests } = r.struct('PCR blob', () => {
    const read = { selection: readSelection(r), digests: readDigests(r) };
    r.finish();
    return read;
  });
  const { slots, count } = digests;
  let next = 0;
  const untrustedBanks = selection.map((bank, b) => {
    const size = digestSize(bank.hashAlg);
    if (size === undefined && bank.pcrs.length > 0) {
      throw new TpmParseError(`selected bank ${algName(bank.hashAlg)} is not a known hash`, 4 + b * 8, ['PCR blob']);
    }
    const first = next;
    for (const pcr of bank.pcrs) {
      if (next >= count) {
        throw new TpmParseError(`${count} digest(s) for more selected PCRs`, bytes.length, ['PCR blob']);
      }
      // A digest's slot starts with its size (u16); the reader checked every slot.
      const valueSize = le16(bytes, digestSlotAt(slots, next));
      if (valueSize !== size) {
        throw new TpmParseError(`${algName(bank.hashAlg)} PCR ${pcr} value has ${valueSize} byte(s), expected ${size}`, bytes.length, ['PCR blob']);
      }
      next += 1;
    }
    // A bank of no PCR may be of an unknown hash: its map is empty, its value size never read.
    return { hashAlg: bank.hashAlg, pcrs: new PcrValues(bytes, slots, first, bank.pcrs, size ?? 0) };
  });
  if (next !== count) {
    throw new TpmParseError(`${count} digest(s) for ${next} selected PCR(s)`, bytes.length, ['PCR blob']);
  }
  return { selection, untrustedBanks };
}

/**
 * Writes the tpm2-tools PCR blob for `banks`, in the layout `parsePcrBlob` reads: one selection
 * slot per bank (sizeofSelect 3, or 4 when a PCR above 23 is present), digests 8 per TPML_DIGEST.
 * Throws `RangeError` for a value of the wrong size, an unknown hash or more than 16 banks.
 */
export function marshalPcrBlobBanks(banks: readonly PcrBank[]): Uint8Array {
  if (banks.length > SELECTION_SLOTS) {
    throw new RangeError(`${banks.length} banks do not fit the ${SELECTION_SLOTS} selection slots`);
  }
  const w = new LittleEndianWriter().u32(banks.length);
  const values: Uint8Array[] = [];
  for (const bank of banks) {
    const size = digestSize(bank.hashAlg);
    const indices = [...bank.pcrs.keys()].sort((a, b) => a - b);
    const sizeofSelect = indices.some((pcr) => pcr >= 24) ? 4 : 3;
    const bitmap = new Uint8Array(MAX_SIZEOF_SELECT);
    bitmap.set(bitmapFromPcrs(indices, sizeofSelect));
    w.u16(bank.hashAlg).u8(sizeofSelect).bytes(bitmap).u8(0);
    for (const pcr of indices) {
      const value = bank.pcrs.get(pcr) as Uint8Array;
      if (size === undefined || value.length !== size) {
        throw new RangeError(`${algName(bank.hashAlg)} PCR ${pcr}: ${value.length}-byte value, expected ${size ?? 'a known hash'}`);
      }
      values.push(value);
    }
  }
  w.zeros((SELECTION_SLOTS - banks.length) * 8);
  const lists = Math.ceil(values.length / DIGEST_SLOTS);
  w.u32(lists);
  for (let l = 0; l < lists; l += 1) {
    const chunk = values.slice(l * DIGEST_SLOTS, (l + 1) * DIGEST_SLOTS);
    w.u32(chunk.length);
    for (let i = 0; i < DIGEST_SLOTS; i += 1) {
      const value = chunk[i] ?? new Uint8Array(0);
      w.u16(value.length).bytes(value).zeros(DIGEST_BUFFER - value.length);
    }
  }
  return w.finish();
}

/** The tpm2-tools PCR blob of one bank (`hashAlg` as TPM_ALG_ID or name like `sha256`). */
export function marshalPcrBlob(hashAlg: number | string, pcrs: ReadonlyMap<number, Uint8Array>): Uint8Array {
  const hash = resolveHash(hashAlg);
  if (hash === undefined) {
    throw new RangeError(`unknown hash algorithm ${String(hashAlg)}`);
  }
  return marshalPcrBlobBanks([{ hashAlg: hash.algId, pcrs }]);
}
