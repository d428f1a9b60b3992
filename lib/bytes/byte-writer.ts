/**
 * A growable, chainable byte writer. Endianness is fixed per subclass, as for the readers.
 * `sized16` back-patches a u16 size prefix, which is how TPM2B structures are marshalled.
 */
export abstract class ByteWriter {
  private buffer = new Uint8Array(256);
  protected view = new DataView(this.buffer.buffer);
  protected length = 0;

  u8(value: number): this {
    this.ensure(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** Zero bytes, for padding. */
  zeros(count: number): this {
    this.ensure(count);
    this.buffer.fill(0, this.length, this.length + count);
    this.length += count;
    return this;
  }

  /** A copy of everything written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  protected ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) {
      return;
    }
    let size = this.buffer.length * 2;
    while (size < this.length + extra) {
      size *= 2;
    }
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  /** Reserves `count` bytes and returns their offset. Read `this.view` only after calling it: it may grow the buffer. */
  protected advance(count: number): number {
    this.ensure(count);
    const at = this.length;
    this.length += count;
    return at;
  }
}

/** Big-endian writer for TPM 2.0 marshalling. */
export class BigEndianWriter extends ByteWriter {
  u16(value: number): this {
    const at = this.advance(2);
    this.view.setUint16(at, value, false);
    return this;
  }

  u32(value: number): this {
    const at = this.advance(4);
    this.view.setUint32(at, value, false);
    return this;
  }

  u64(value: bigint): this {
    const at = this.advance(8);
    this.view.setBigUint64(at, value, false);
    return this;
  }

  /** A TPM2B: u16 size then the bytes. */
  tpm2b(value: Uint8Array): this {
    if (value.length > 0xffff) {
      throw new RangeError(`TPM2B of ${value.length} bytes does not fit a u16 size`);
    }
    return this.u16(value.length).bytes(value);
  }

  /** Writes `body` behind a u16 size prefix that is back-patched once the body is written. */
  sized16(body: (writer: this) => void): this {
    const at = this.advance(2);
    const start = this.length;
    body(this);
    this.view.setUint16(at, this.length - start, false);
    return this;
  }
}

/** Little-endian writer for the event log and the tpm2-tools PCR blob. */
export class LittleEndianWriter extends ByteWriter {
  u16(value: number): this {
    const at = this.advance(2);
    this.view.setUint16(at, value, true);
    return this;
  }

  u32(value: number): this {
    const at = this.advance(4);
    this.view.setUint32(at, value, true);
    return this;
  }

  u64(value: bigint): this {
    const at = this.advance(8);
    this.view.setBigUint64(at, value, true);
    return this;
  }
}
