/**
 * A map of at most `capacity` entries for per-process caches (the broker's verified tokens, checked
 * tee-pubkeys, used sessions and compiled nodes; the push verifier's issued and completed attestations
 * and compiled policies): storing one more drops the least recently used. A `Map`
 * iterates in insertion order, so a hit (`get`) or a store moves its key to the end and the first key
 * is the one to drop. Dropping that one, rather than emptying the whole cache when full, keeps the
 * entries in use through a burst of new ones (a client that opens many sessions cannot push out the
 * keys of nodes that fetch all the time). Every entry is only a shortcut: a dropped one is rebuilt.
 * With a weight budget it also keeps what the values weigh together under a cap (the boot log memo).
 */
/** A cap on what a `BoundedCache`'s values weigh together, beside its count. */
export interface CacheWeightBudget<V> {
  /** What one value weighs (the boot log memo: its characters). */
  readonly weigh: (value: V) => number;
  /** The most the values may weigh together: past it the least recently used go first. */
  readonly budget: number;
}

export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();
  private weighed = 0;

  constructor(
    private readonly capacity: number,
    private readonly weight?: CacheWeightBudget<V>,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`cache capacity must be a positive integer, not ${capacity}`);
    }
  }

  /** The value of `key`, which becomes the most recently used. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** Stores `value` as the most recently used, dropping the least recently used past the capacity or the weight budget. */
  set(key: K, value: V): void {
    this.delete(key);
    this.entries.set(key, value);
    this.weighed += this.weight?.weigh(value) ?? 0;
    while (this.entries.size > this.capacity || (this.weight !== undefined && this.weighed > this.weight.budget)) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) {
        break;
      }
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.weighed -= this.weight?.weigh(value) ?? 0;
    }
  }

  /** What the values kept weigh together (0 without a weight budget). */
  get weighedTotal(): number {
    return this.weighed;
  }
}
