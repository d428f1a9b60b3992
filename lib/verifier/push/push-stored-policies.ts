import { BoundedCache } from '../../cache/bounded-cache.js';
import type { PolicyCache } from '../policy-cache.js';
import type { PolicyReads } from '../polled-agent.js';
import type { StoredMbPolicy, StoredRuntimePolicy, Versioned, VerifierPolicyRepository } from '../verifier-policy-repository.js';

/** The policy stores' reads, and the versions of their rows (a cheap check that a text read is still the one stored). */
export type VersionedPolicyReads = PolicyReads & Pick<VerifierPolicyRepository, 'runtimeVersion' | 'mbVersion'>;

interface Read<T> {
  /** When the read started (ms since the epoch). */
  readonly at: number;
  /** `PolicyCache.changeCount` when the read started. */
  readonly change: number;
  /** The row with its version, read in one statement: a text stored since shows as a version changed. */
  readonly value: Promise<Versioned<T> | undefined>;
  /** When the version was last checked (or read). */
  checkedAt: number;
}

/** How one store is read: the row with its version, and the version alone. */
interface Store<T> {
  readonly reads: BoundedCache<string, Read<T>>;
  readonly row: (name: string) => Promise<Versioned<T> | undefined>;
  readonly version: (name: string) => Promise<string | undefined>;
}

/**
 * The stored runtime policies and refstates, read by name at most once per `reuseMs` for all the push
 * agents enrolled with the same name (a fleet usually shares one of each). Before, each agent read
 * both rows whenever its compiled policies expired: at 200 agents, 45 % of the push verifier's
 * statements, 100 KB a read with the fleet's policies. A read in flight is shared by the agents
 * that ask meanwhile; a failed read is not kept (the next one goes to the database), nor is a name
 * not found. A read is not reused for an agent enrolled after it started (`notBefore`: the operator
 * may have replaced the text and then enrolled), nor after this process updated or deleted the name
 * (`PolicyCache.changeCount`), nor once its row's version changed: the first request for a name
 * `checkMs` after its last check reads the version alone (one short statement per name, not per
 * agent) and reads the row again when another process stored a new text. A read is one statement:
 * the row with its version. An expired read is replaced
 * when asked for; the others go by LRU.
 */
export class SharedPolicyReads {
  private readonly runtime: Store<StoredRuntimePolicy>;
  private readonly mb: Store<StoredMbPolicy>;

  constructor(
    store: VersionedPolicyReads,
    private readonly changes: Pick<PolicyCache, 'changeCount'>,
    private readonly reuseMs: number,
    private readonly checkMs: number,
    capacity: number,
    /**
     * When a read starts (unix ms), on the clock `since` is given on: the database's in a verifier
     * (`DatabaseClock.nowMs`), which dated the enrolments.
     */
    private readonly clock: () => number,
  ) {
    this.runtime = { reads: new BoundedCache(capacity), row: (name) => store.findRuntime(name), version: (name) => store.runtimeVersion(name) };
    this.mb = { reads: new BoundedCache(capacity), row: (name) => store.findMb(name), version: (name) => store.mbVersion(name) };
  }

  /** The stores as seen by reads started at `notBefore` (ms since the epoch, on `clock`) or later. */
  since(notBefore: number): PolicyReads {
    return {
      findRuntime: (name) => this.shared(this.runtime, name, notBefore),
      findMb: (name) => this.shared(this.mb, name, notBefore),
    };
  }

  private shared<T>(store: Store<T>, name: string, notBefore: number): Promise<Versioned<T> | undefined> {
    const now = this.clock();
    const change = this.changes.changeCount();
    const kept = store.reads.get(name);
    if (kept === undefined || now - kept.at >= this.reuseMs || kept.at < notBefore || kept.change !== change) return this.read(store, name, now, change);
    if (now - kept.checkedAt < this.checkMs) return kept.value;
    kept.checkedAt = now;
    // A version that cannot be read counts as changed: the row is read again (its error is the caller's).
    const unchanged = Promise.all([kept.value, store.version(name)]).then(([was, is]) => was?.version === is, () => false);
    return unchanged.then((same) => (same ? kept.value : this.read(store, name, this.clock(), change)));
  }

  private read<T>(store: Store<T>, name: string, now: number, change: number): Promise<Versioned<T> | undefined> {
    const value = store.row(name);
    const entry: Read<T> = { at: now, change, value, checkedAt: now };
    store.reads.set(name, entry);
    const forget = (): void => {
      if (store.reads.get(name) === entry) store.reads.delete(name);
    };
    value.then((found) => {
      if (found === undefined) forget();
    }, forget);
    return value;
  }
}
