/**
 * A map of at most `capacity` entries for per-process caches (the broker's verified tokens, checked
 * tee-pubkeys, used sessions and compiled nodes; the push verifier's issued and completed attestations
 * and compiled policies): storing one more drops the least recently used. A `Map`
 * iterates in insertion order, so a hit (`get`) or a store moves its key to the end and the first key
 * is the one to drop. Dropping that one, rather than emptying the whole cache when full, keeps the
 * entries in use through a burst of new ones (a client that opens many sessions cannot push out the
 * keys of nodes that fetch all the time). Every entry is only a shortcut: a dropped one is rebuilt.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {
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

  /** Stores `value` as the most recently used, dropping the least recently used when that makes one too many. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) {
        this.entries.delete(oldest.value);
      }
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }
}
