import { TPMU_HA_SIZE } from '../constants.js';

/**
 * One bank's PCR values read where they lie in a tpm2-tools PCR blob (`parsePcrBlobInPlace`), as a
 * read-only map: index → value, in ascending index order, as the `Map` it replaces. A value's view is
 * made the first time it is read and kept (the same object on every later read, as a map gives), so a
 * round that reads a few PCRs does not pay a view per quoted PCR (docs/fleet.md, twenty-second pass),
 * and `copyValuesTo` joins them for the quote's digest without any view at all.
 *
 * The blob's digests sit in TPML_DIGEST lists of `DIGEST_SLOTS` slots of `| size u16 | buffer[64] |`
 * (the layout is `lib/tpm/pcr-blob.ts`'s, which has checked every slot's size before this is made);
 * the bank's values are the blob's digests `first`, `first + 1`, … (`DigestSlots`) in the order of `pcrs`.
 */
export class PcrValues implements ReadonlyMap<number, Uint8Array> {
  /** Views made so far, by position in `pcrs`; made on the first read. */
  private views: (Uint8Array | undefined)[] | undefined;

  constructor(
    private readonly bytes: Uint8Array,
    /** Where the blob's digests lie. */
    private readonly slots: DigestSlots,
    /** The blob-wide position of this bank's first digest. */
    private readonly first: number,
    /** The bank's PCR indices, ascending (the selection's bitmap, read low bit first). */
    private readonly pcrs: readonly number[],
    /** Every value's size: the bank's digest size. */
    readonly valueSize: number,
  ) {}

  get size(): number {
    return this.pcrs.length;
  }

  get(pcr: number): Uint8Array | undefined {
    const position = this.pcrs.indexOf(pcr);
    return position < 0 ? undefined : this.valueAt(position);
  }

  has(pcr: number): boolean {
    return this.pcrs.includes(pcr);
  }

  forEach(callback: (value: Uint8Array, pcr: number, map: ReadonlyMap<number, Uint8Array>) => void, thisArg?: unknown): void {
    for (let position = 0; position < this.pcrs.length; position += 1) {
      callback.call(thisArg, this.valueAt(position), this.pcrs[position] as number, this);
    }
  }

  *entries(): IterableIterator<[number, Uint8Array]> {
    for (let position = 0; position < this.pcrs.length; position += 1) {
      yield [this.pcrs[position] as number, this.valueAt(position)];
    }
  }

  *keys(): IterableIterator<number> {
    yield* this.pcrs;
  }

  *values(): IterableIterator<Uint8Array> {
    for (let position = 0; position < this.pcrs.length; position += 1) {
      yield this.valueAt(position);
    }
  }

  [Symbol.iterator](): IterableIterator<[number, Uint8Array]> {
    return this.entries();
  }

  /**
   * Copies every value, in order, into `target` from `at`; returns the offset after the last. Four bytes
   * at a time through two `DataView`s — every digest size in `HASH_ALGORITHMS` is a multiple of 4, which
   * its test holds — since a view or a `Buffer.copy` call per value costs more than the copy itself
   * (docs/fleet.md, twenty-second pass).
   */
  copyValuesTo(target: Uint8Array, at: number): number {
    const { bytes, valueSize } = this;
    const source = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const sink = new DataView(target.buffer, target.byteOffset, target.byteLength);
    let offset = at;
    for (let position = 0; position < this.pcrs.length; position += 1) {
      const start = this.valueOffset(position);
      for (let i = 0; i < valueSize; i += 4) sink.setUint32(offset + i, source.getUint32(start + i));
      offset += valueSize;
    }
    return offset;
  }

  private valueAt(position: number): Uint8Array {
    const views = (this.views ??= []);
    let view = views[position];
    if (view === undefined) {
      const start = this.valueOffset(position);
      view = this.bytes.subarray(start, start + this.valueSize);
      views[position] = view;
    }
    return view;
  }

  /** Where the value at `position` starts: past its slot's size (u16). */
  private valueOffset(position: number): number {
    return digestSlotAt(this.slots, this.first + position) + 2;
  }
}

/**
 * Where the blob's digests have their slots. `listsAt`: every list but the last is full, so digest `d`
 * (0, 1, … across the lists) is slot `d % 8` of list `d / 8`; otherwise (a TPM2_PCR_Read may answer
 * fewer than 8 digests with more to come) each digest's slot offset, in order.
 */
export type DigestSlots = { readonly listsAt: number } | { readonly offsets: readonly number[] };

/** Where digest `digest` has its slot (`| size u16 | buffer |`). */
export function digestSlotAt(slots: DigestSlots, digest: number): number {
  if ('offsets' in slots) return slots.offsets[digest] as number;
  return slots.listsAt + Math.floor(digest / DIGEST_SLOTS) * DIGEST_LIST_BYTES + 4 + (digest % DIGEST_SLOTS) * DIGEST_SLOT_BYTES;
}

/** Slots of a tpm2-tools TPML_DIGEST. */
export const DIGEST_SLOTS = 8;
/** One slot: | size u16 | buffer |, the buffer TPMU_HA's size (the largest digest). */
export const DIGEST_SLOT_BYTES = 2 + TPMU_HA_SIZE;
/** One TPML_DIGEST: | count u32 | 8 slots |. */
export const DIGEST_LIST_BYTES = 4 + DIGEST_SLOTS * DIGEST_SLOT_BYTES;
