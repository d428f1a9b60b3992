import { BigEndianReader } from '../../bytes/byte-reader.js';
import { BigEndianWriter } from '../../bytes/byte-writer.js';
import { TpmParseError } from '../../bytes/parse-errors.js';
import { viewOf } from './reader-views.js';

/** HASH_COUNT bound on TPML_PCR_SELECTION.count: one entry per bank (Part 2 §10.9.7, Table 111). */
export const MAX_PCR_BANKS = 16;
/** PCR_SELECT_MAX for 32 PCRs, the most a TPMS_PCR_SELECTION bitmap here may describe. */
export const MAX_SIZEOF_SELECT = 4;

/**
 * One TPMS_PCR_SELECTION (Part 2 §10.6.2, Table 94): a bank's hash and the PCRs selected in it.
 * `sizeofSelect` is kept so marshalling reproduces the received bytes (3 for a 24-PCR TPM).
 */
export interface PcrSelection {
  readonly hashAlg: number;
  readonly sizeofSelect: number;
  /** Selected PCR indices in ascending order. */
  readonly pcrs: readonly number[];
}

/** PCR indices set in a little-endian-bit bitmap: bit i of byte j selects PCR 8j + i (Part 2 §10.6.1). */
export function pcrsFromBitmap(bitmap: Uint8Array): number[] {
  const pcrs: number[] = [];
  for (let j = 0; j < bitmap.length; j += 1) {
    const byte = bitmap[j] ?? 0;
    for (let i = 0; i < 8; i += 1) {
      if ((byte >> i) & 1) {
        pcrs.push(j * 8 + i);
      }
    }
  }
  return pcrs;
}

/** The `sizeofSelect`-byte bitmap of `pcrs`; throws if a PCR does not fit. */
export function bitmapFromPcrs(pcrs: readonly number[], sizeofSelect: number): Uint8Array {
  const bitmap = new Uint8Array(sizeofSelect);
  for (const pcr of pcrs) {
    if (!Number.isInteger(pcr) || pcr < 0 || pcr >= sizeofSelect * 8) {
      throw new RangeError(`PCR ${pcr} does not fit a ${sizeofSelect}-byte selection`);
    }
    bitmap[pcr >> 3] = (bitmap[pcr >> 3] ?? 0) | (1 << (pcr & 7));
  }
  return bitmap;
}

/**
 * Unmarshals a TPML_PCR_SELECTION (Part 2 Table 111): u32 count, then `count` times
 * | hash u16 | sizeofSelect u8 | pcrSelect[sizeofSelect] |.
 */
export function unmarshalTpmlPcrSelection(r: BigEndianReader): PcrSelection[] {
  return r.struct('TPML_PCR_SELECTION', () => {
    const count = r.u32();
    if (count > MAX_PCR_BANKS) {
      throw r.error(`count ${count} exceeds ${MAX_PCR_BANKS}`);
    }
    const banks: PcrSelection[] = [];
    for (let i = 0; i < count; i += 1) {
      banks.push(r.struct(`pcrSelections[${i}]`, () => {
        const hashAlg = r.u16();
        const sizeofSelect = r.u8();
        if (sizeofSelect > MAX_SIZEOF_SELECT) {
          throw r.error(`sizeofSelect ${sizeofSelect} exceeds ${MAX_SIZEOF_SELECT}`);
        }
        return { hashAlg, sizeofSelect, pcrs: pcrsFromBitmap(viewOf(r, sizeofSelect)) };
      }));
    }
    return banks;
  });
}

export function marshalTpmlPcrSelectionTo(w: BigEndianWriter, selection: readonly PcrSelection[]): void {
  w.u32(selection.length);
  for (const bank of selection) {
    w.u16(bank.hashAlg).u8(bank.sizeofSelect).bytes(bitmapFromPcrs(bank.pcrs, bank.sizeofSelect));
  }
}

/** Parses a TPML_PCR_SELECTION that fills `bytes` exactly. Throws `TpmParseError`. */
export function parseTpmlPcrSelection(bytes: Uint8Array): PcrSelection[] {
  const r = new BigEndianReader(bytes, TpmParseError);
  const selection = unmarshalTpmlPcrSelection(r);
  r.finish();
  return selection;
}

export function marshalTpmlPcrSelection(selection: readonly PcrSelection[]): Uint8Array {
  const w = new BigEndianWriter();
  marshalTpmlPcrSelectionTo(w, selection);
  return w.finish();
}

/**
 * True when two selections choose the same PCRs in the same banks in the same order. Banks with no
 * PCR selected are ignored (they contribute nothing to a quote), and so is `sizeofSelect`.
 */
export function sameSelection(a: readonly PcrSelection[], b: readonly PcrSelection[]): boolean {
  const x = a.filter((bank) => bank.pcrs.length > 0);
  const y = b.filter((bank) => bank.pcrs.length > 0);
  return x.length === y.length && x.every((bank, i) => {
    const other = y[i];
    return other !== undefined && other.hashAlg === bank.hashAlg
      && other.pcrs.length === bank.pcrs.length && other.pcrs.every((pcr, j) => pcr === bank.pcrs[j]);
  });
}

/** "sha256:10,16+sha1:0" style description, for messages. */
export function describeSelection(selection: readonly PcrSelection[], name: (alg: number) => string): string {
  return selection.map((bank) => `${name(bank.hashAlg)}:${bank.pcrs.join(',')}`).join('+') || '(none)';
}
