/** The initial hash value (FIPS 180-4 §5.3.1) as signed 32-bit words, and the two round constants above 2^31. */
const H0 = 0x67452301;
const H1 = 0xefcdab89 | 0;
const H2 = 0x98badcfe | 0;
const H3 = 0x10325476;
const H4 = 0xc3d2e1f0 | 0;
const K3 = 0x8f1bbcdc | 0;
const K4 = 0xca62c1d6 | 0;
const MESSAGE_BITS = 40 * 8;

/**
 * A PCR of the sha1 bank, extended in JavaScript: `PCR = SHA-1(PCR ‖ digest)`. The message is
 * always 40 bytes, so SHA-1 is one compression of one block whose padding never changes (FIPS 180-4
 * §5.1.1: 0x80, zeros, the bit length 320), and the value stays as five big-endian words between
 * extends. One extend costs about half of a one-shot node:crypto hash of the same 40 bytes, most of
 * which is the call itself (argument checks, the result string, writing the inputs into a buffer).
 */
export class Sha1Pcr {
  private readonly words = new Int32Array(5);
  /** The message schedule; words 0–4 are the PCR, 5–9 the digest, 10–15 the fixed padding. */
  private readonly schedule = new Int32Array(80);

  /** Starts from a value given as 40 hex digits. */
  constructor(hex: string) {
    const bytes = Buffer.from(hex, 'hex');
    for (let i = 0; i < 5; i++) {
      this.words[i] = bytes.readInt32BE(4 * i);
    }
    this.schedule[10] = 0x80000000 | 0;
    this.schedule[15] = MESSAGE_BITS;
  }

  /** Extends with a 20-byte digest given as a latin1 string. */
  extendLatin1(digest: string): void {
    const w = this.schedule;
    for (let i = 0; i < 5; i++) {
      const at = 4 * i;
      w[5 + i] = (digest.charCodeAt(at) << 24) | (digest.charCodeAt(at + 1) << 16) | (digest.charCodeAt(at + 2) << 8) | digest.charCodeAt(at + 3);
    }
    this.compress();
  }

  /** Extends with a 20-byte digest. */
  extendBytes(digest: Uint8Array): void {
    const w = this.schedule;
    for (let i = 0; i < 5; i++) {
      const at = 4 * i;
      w[5 + i] = ((digest[at] as number) << 24) | ((digest[at + 1] as number) << 16) | ((digest[at + 2] as number) << 8) | (digest[at + 3] as number);
    }
    this.compress();
  }

  /** Whether the value is `quoted` (20 bytes as latin1); stops at the first word that differs. */
  equalsLatin1(quoted: string): boolean {
    if (quoted.length !== 20) {
      return false;
    }
    for (let i = 0; i < 5; i++) {
      const at = 4 * i;
      if (this.words[i] !== ((quoted.charCodeAt(at) << 24) | (quoted.charCodeAt(at + 1) << 16) | (quoted.charCodeAt(at + 2) << 8) | quoted.charCodeAt(at + 3))) {
        return false;
      }
    }
    return true;
  }

  toHex(): string {
    const bytes = Buffer.allocUnsafe(20);
    for (let i = 0; i < 5; i++) {
      bytes.writeInt32BE(this.words[i] as number, 4 * i);
    }
    return bytes.toString('hex');
  }

  /**
   * FIPS 180-4 §6.1.2 on the single block: schedule, 80 rounds in four stages of 20 (each its own
   * loop with its function and constant, which V8 compiles far better than one loop with branches),
   * then the sum with the initial value.
   */
  private compress(): void {
    const w = this.schedule;
    const h = this.words;
    for (let i = 0; i < 5; i++) {
      w[i] = h[i] as number;
    }
    for (let t = 16; t < 80; t++) {
      const x = (w[t - 3] as number) ^ (w[t - 8] as number) ^ (w[t - 14] as number) ^ (w[t - 16] as number);
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = H0;
    let b = H1;
    let c = H2;
    let d = H3;
    let e = H4;
    let t = 0;
    for (; t < 20; t++) {
      const next = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + (w[t] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    for (; t < 40; t++) {
      const next = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + (w[t] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    for (; t < 60; t++) {
      const next = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + K3 + (w[t] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    for (; t < 80; t++) {
      const next = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + K4 + (w[t] as number)) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    h[0] = (a + H0) | 0;
    h[1] = (b + H1) | 0;
    h[2] = (c + H2) | 0;
    h[3] = (d + H3) | 0;
    h[4] = (e + H4) | 0;
  }
}
