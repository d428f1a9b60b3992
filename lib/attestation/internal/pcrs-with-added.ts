/**
 * A quote's PCR map with one more PCR, as a view: reads `base` and adds `pcr` after its entries, in the
 * order `new Map(base).set(pcr, value)` would give, without copying every entry each round (a round asked
 * without PCR 0 judges the quote's PCRs with the remembered PCR 0: docs/fleet.md, twentieth pass).
 * `base` must not hold `pcr` and must not change while the view is in use (a verified quote's map does not).
 */
export class PcrsWithAdded implements ReadonlyMap<number, Uint8Array> {
  constructor(
    private readonly base: ReadonlyMap<number, Uint8Array>,
    private readonly pcr: number,
    private readonly value: Uint8Array,
  ) {}

  get size(): number {
    return this.base.size + 1;
  }

  get(pcr: number): Uint8Array | undefined {
    return pcr === this.pcr ? this.value : this.base.get(pcr);
  }

  has(pcr: number): boolean {
    return pcr === this.pcr || this.base.has(pcr);
  }

  forEach(callback: (value: Uint8Array, pcr: number, map: ReadonlyMap<number, Uint8Array>) => void, thisArg?: unknown): void {
    this.base.forEach((value, pcr) => callback.call(thisArg, value, pcr, this));
    callback.call(thisArg, this.value, this.pcr, this);
  }

  *entries(): IterableIterator<[number, Uint8Array]> {
    yield* this.base.entries();
    yield [this.pcr, this.value];
  }

  *keys(): IterableIterator<number> {
    yield* this.base.keys();
    yield this.pcr;
  }

  *values(): IterableIterator<Uint8Array> {
    yield* this.base.values();
    yield this.value;
  }

  [Symbol.iterator](): IterableIterator<[number, Uint8Array]> {
    return this.entries();
  }
}
