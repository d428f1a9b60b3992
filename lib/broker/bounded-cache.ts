/**
 * A map of at most `capacity` entries for the broker's per-process caches (verified tokens, checked
 * tee-pubkeys, used sessions): storing one more drops the oldest stored (a `Map` iterates in insertion
 * order, so the oldest is its first key). A hit does not refresh an entry: every entry here is cheap
 * to rebuild or only a shortcut, and the order of storing costs nothing to keep. Storing a key again
 * makes it the newest. Dropping the oldest, rather than emptying the whole cache when full, keeps the
 * recent entries (the ones in use) through a burst of new ones.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`cache capacity must be a positive integer, not ${capacity}`);
    }
  }

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** Stores `value` as the newest entry, dropping the oldest when that makes one too many. */
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

  delete(key: K): boolean {
    return this.entries.delete(key);
  }
}
