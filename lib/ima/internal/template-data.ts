/**
 * Encoding of IMA template data: the bytes the template hash is computed over and the PCR is
 * extended with. Field formats (kernel `ima_template_lib.c`, all lengths u32 little-endian, the
 * kernel's canonical format):
 *
 * | field | encoding |
 * |---|---|
 * | `d-ng`, `d-modsig` | `u32 len ‖ alg ‖ ':' ‖ 0x00 ‖ digest` (len counts everything after it) |
 * | `n-ng` | `u32 len ‖ name ‖ 0x00` |
 * | `sig`, `buf`, `modsig` | `u32 len ‖ bytes` (len 0 when absent) |
 * | `d` (template `ima`) | the 20-byte (or 16-byte md5) digest, no length |
 * | `n` (template `ima`) | name ‖ 0x00 ‖ zero padding, 256 bytes in all (`IMA_EVENT_NAME_LEN_MAX` + 1) |
 *
 * The writer fills one buffer sized in advance, decoding hex straight into it: `Buffer#write` stops
 * at the first non-hex pair, so comparing the bytes written with the hex length rejects bad hex
 * without a second pass or a regular expression.
 */

/** Longest name the legacy `ima` template's `n` field holds (`IMA_EVENT_NAME_LEN_MAX`). */
export const LEGACY_NAME_MAX = 255;
/** Size of the legacy `n` field: the name, its NUL and the zero padding. */
export const LEGACY_NAME_FIELD_SIZE = LEGACY_NAME_MAX + 1;

/** Size of a `d-ng` field for an algorithm name of `algBytes` bytes and a digest of `digestBytes`. */
export function digestNgSize(algBytes: number, digestBytes: number): number {
  return 4 + algBytes + 2 + digestBytes;
}

/** Size of an `n-ng` field for a name of `nameBytes` UTF-8 bytes. */
export function nameNgSize(nameBytes: number): number {
  return 4 + nameBytes + 1;
}

/** Writes template fields into a buffer allocated for their exact total size. */
export class TemplateDataWriter {
  private offset = 0;

  constructor(readonly data: Buffer) {}

  /** `d-ng`; returns false when `hex` is not valid hex. */
  digestNg(algorithm: string, algBytes: number, hex: string): boolean {
    const digestBytes = hex.length >>> 1;
    this.u32(algBytes + 2 + digestBytes);
    this.offset += this.data.write(algorithm, this.offset, 'utf8');
    this.data[this.offset++] = 0x3a; // ':'
    this.data[this.offset++] = 0x00;
    return this.hex(hex);
  }

  /** `n-ng`. */
  nameNg(name: string, nameBytes: number): void {
    this.u32(nameBytes + 1);
    this.offset += this.data.write(name, this.offset, 'utf8');
    this.data[this.offset++] = 0x00;
  }

  /**
   * `sig` / `buf` / `modsig`: u32 length then the bytes. Returns the bytes as a view into the data,
   * or `undefined` when `hex` is not valid hex.
   */
  sizedHex(hex: string): Buffer | undefined {
    this.u32(hex.length >>> 1);
    const start = this.offset;
    return this.hex(hex) ? this.data.subarray(start, this.offset) : undefined;
  }

  /** An empty sized field (`d-modsig` of a file without an appended signature). */
  emptyField(): void {
    this.u32(0);
  }

  /** Legacy `d`: the raw digest; returns false when `hex` is not valid hex. */
  legacyDigest(hex: string): boolean {
    return this.hex(hex);
  }

  /** Legacy `n`: the name, NUL, zero padding to 256 bytes. */
  legacyName(name: string): void {
    const start = this.offset;
    this.offset += this.data.write(name, this.offset, 'utf8');
    this.data.fill(0, this.offset, start + LEGACY_NAME_FIELD_SIZE);
    this.offset = start + LEGACY_NAME_FIELD_SIZE;
  }

  /** True once every byte of the buffer was written. */
  get complete(): boolean {
    return this.offset === this.data.length;
  }

  private u32(value: number): void {
    this.data.writeUInt32LE(value, this.offset);
    this.offset += 4;
  }

  private hex(hex: string): boolean {
    if ((hex.length & 1) !== 0) {
      return false;
    }
    const written = hex.length === 0 ? 0 : this.data.write(hex, this.offset, 'hex');
    this.offset += written;
    return written * 2 === hex.length;
  }
}
