import { BoundedCache } from '../../cache/bounded-cache.js';
import type { PolicyReads } from '../polled-agent.js';
import type { StoredMbPolicy, StoredRuntimePolicy } from '../verifier-policy-repository.js';

interface Read<T> {
  readonly at: number;
  readonly value: Promise<T | undefined>;
}

/**
 * The stored runtime policies and refstates, read by name at most once per `reuseMs` for all the push
 * agents enrolled with the same name (a fleet usually shares one of each). Before, each agent read
 * both rows whenever its compiled policies expired: at 200 agents, 45 % of the push verifier's
 * statements, 100 KB a read with the fleet's policies. A read in flight is shared by the agents
 * that ask meanwhile; a failed read is not kept (the next one goes to the database), nor is a name
 * not found (an agent enrolled with a policy stored a moment later sees it at once).
 */
export class SharedPolicyReads implements PolicyReads {
  private readonly runtime: BoundedCache<string, Read<StoredRuntimePolicy>>;
  private readonly mb: BoundedCache<string, Read<StoredMbPolicy>>;

  constructor(
    private readonly store: PolicyReads,
    private readonly reuseMs: number,
    capacity: number,
  ) {
    this.runtime = new BoundedCache(capacity);
    this.mb = new BoundedCache(capacity);
  }

  findRuntime(name: string): Promise<StoredRuntimePolicy | undefined> {
    return this.shared(this.runtime, name, () => this.store.findRuntime(name));
  }

  findMb(name: string): Promise<StoredMbPolicy | undefined> {
    return this.shared(this.mb, name, () => this.store.findMb(name));
  }

  private shared<T>(reads: BoundedCache<string, Read<T>>, name: string, read: () => Promise<T | undefined>): Promise<T | undefined> {
    const now = Date.now();
    const kept = reads.get(name);
    if (kept !== undefined && now - kept.at < this.reuseMs) return kept.value;
    const value = read();
    const entry = { at: now, value };
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
