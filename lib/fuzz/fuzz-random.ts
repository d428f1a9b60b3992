/**
 * A small deterministic generator (SplitMix32 seeding a xorshift128 state), so that input `i` of a run
 * with seed `s` is the same on every machine: a failure found in a long run is replayed with
 * `--seed s --start i --count 1`. Not for cryptography.
 */
export class FuzzRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, index: number) {
    let x = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next() | 1;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    const t = this.#a ^ (this.#a << 11);
    this.#a = this.#b;
    this.#b = this.#c;
    this.#c = this.#d;
    this.#d = (this.#d ^ (this.#d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.#d;
  }

  /** An integer in [0, n) (n ≥ 1). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 1) {
      out[i] = this.u32() & 0xff;
    }
    return out;
  }
}
