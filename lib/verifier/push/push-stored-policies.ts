import { BoundedCache } from '../../cache/bounded-cache.js';
import type { PolicyCache } from '../policy-cache.js';
import type { PolicyReads } from '../polled-agent.js';
import type { StoredMbPolicy, StoredRuntimePolicy } from '../verifier-policy-repository.js';

interface Read<T> {
  /** When the read started (ms since the epoch). */
  readonly at: number;
  /** `PolicyCache.changeCount` when the read started. */
  readonly change: number;
  readonly value: Promise<T | undefined>;
}

/**
 * The stored runtime policies and refstates, read by name at most once per `reuseMs` for all the push
 * agents enrolled with the same name (a fleet usually shares one of each). Before, each agent read
 * both rows whenever its compiled policies expired: at 200 agents, 45 % of the push verifier's
 * statements, 100 KB a read with the fleet's policies. A read in flight is shared by the agents
 * that ask meanwhile; a failed read is not kept (the next one goes to the database), nor is a name
 * not found. A read is not reused for an agent enrolled after it started (`notBefore`: the operator
 * may have replaced the text and then enrolled), nor after this process updated or deleted the name
 * (`PolicyCache.changeCount`). An expired read is replaced when asked for; the others go by LRU.
 */
export class SharedPolicyReads {
  private readonly runtime: BoundedCache<string, Read<StoredRuntimePolicy>>;
  private readonly mb: BoundedCache<string, Read<StoredMbPolicy>>;

  constructor(
    private readonly store: PolicyReads,
    private readonly changes: Pick<PolicyCache, 'changeCount'>,
    private readonly reuseMs: number,
    capacity: number,
  ) {
    this.runtime = new BoundedCache(capacity);
    this.mb = new BoundedCache(capacity);
  }

  /** The stores as seen by reads started at `notBefore` (ms since the epoch) or later. */
  since(notBefore: number): PolicyReads {
    return {
      findRuntime: (name) => this.shared(this.runtime, name, notBefore, () => this.store.findRuntime(name)),
      findMb: (name) => this.shared(this.mb, name, notBefore, () => this.store.findMb(name)),
    };
  }

  private shared<T>(reads: BoundedCache<string, Read<T>>, name: string, notBefore: number, read: () => Promise<T | undefined>): Promise<T | undefined> {
    const now = Date.now();
    const change = this.changes.changeCount();
    const kept = reads.get(name);
    if (kept !== undefined && now - kept.at < this.reuseMs && kept.at >= notBefore && kept.change === change) return kept.value;
    const value = read();
    const entry = { at: now, change, value };
    reads.set(name, entry);
    const forget = (): void => {
      if (reads.get(name) === entry) reads.delete(name);
    };
    value.then((found) => {
      if (found === undefined) forget();
    }, forget);
    return value;
  }
}
