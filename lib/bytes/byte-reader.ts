import type { ParseErrorClass } from './parse-errors.js';

/**
 * A bounds-checked cursor over untrusted bytes. Every read checks that the bytes are there, and a
 * declared size is checked against what is left *before* anything is allocated, so a hostile length
 * field can never cause a huge allocation or an out-of-range read. Failures throw the domain's parse
 * error (given at construction) with the offset and the structure trail.
 *
 * Endianness is fixed per subclass: `BigEndianReader` for TPM marshalling (TPM 2.0 Part 1 §18),
 * `LittleEndianReader` for the UEFI/TCG event log and the tpm2-tools PCR blob.
 */
export abstract class ByteReader {
  protected readonly view: DataView;
  private cursor = 0;
  private readonly trail: string[] = [];

  constructor(
    readonly bytes: Uint8Array,
    private readonly errorClass: ParseErrorClass,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.bytes.length - this.cursor;
  }

  /** Offset of the next byte to read. */
  get offset(): number {
    return this.cursor;
  }

  /** Reads a structure under `name`, so that errors inside it carry the name in their trail. */
  struct<T>(name: string, read: () => T): T {
    this.trail.push(name);
    try {
      return read();
    } finally {
      this.trail.pop();
    }
  }

  /** Builds this reader's parse error at the current offset. */
  error(detail: string): Error {
    return new this.errorClass(detail, this.cursor, [...this.trail]);
  }

  u8(): number {
    const at = this.take(1);
    return this.view.getUint8(at);
  }

  bool(): boolean {
    const value = this.u8();
    if (value > 1) {
      throw this.error(`boolean must be 0 or 1, got ${value}`);
    }
    return value === 1;
  }

  /** `n` bytes, copied out so later mutation of the source cannot change what was parsed. */
  bytesOf(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw this.error(`invalid length ${n}`);
    }
    const at = this.take(n);
    return this.bytes.slice(at, at + n);
  }

  /** Everything that is left. */
  rest(): Uint8Array {
    return this.bytesOf(this.remaining);
  }

  /** Skips `n` bytes (padding, reserved fields). */
  skip(n: number): void {
    this.take(n);
  }

  /** Throws unless every byte was read: trailing bytes mean the input is not what it claims to be. */
  finish(): void {
    if (this.remaining !== 0) {
      throw this.error(`${this.remaining} trailing byte(s)`);
    }
  }

  /** Reserves `n` bytes and returns their offset, or throws if they are not there. */
  protected take(n: number): number {
    if (n > this.remaining) {
      throw this.error(`need ${n} byte(s), ${this.remaining} left`);
    }
    const at = this.cursor;
    this.cursor += n;
    return at;
  }
}

/** Big-endian reader for TPM 2.0 marshalled structures (TPM 2.0 Part 1, §18 "Marshaling"). */
export class BigEndianReader extends ByteReader {
  u16(): number {
    return this.view.getUint16(this.take(2), false);
  }

  u32(): number {
    return this.view.getUint32(this.take(4), false);
  }

  u64(): bigint {
    return this.view.getBigUint64(this.take(8), false);
  }

  /** A TPM2B: a u16 size then that many bytes (TPM 2.0 Part 2, §10.4). */
  tpm2b(maxSize = 0xffff): Uint8Array {
    const size = this.u16();
    if (size > maxSize) {
      throw this.error(`size ${size} exceeds the maximum ${maxSize}`);
    }
    return this.bytesOf(size);
  }
}

/** Little-endian reader for the TCG PC Client event log and the tpm2-tools PCR blob. */
export class LittleEndianReader extends ByteReader {
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }

  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  u64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }
}
