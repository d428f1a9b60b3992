import type { AgentPolicies } from '../../attestation/agent-policies.js';
import { BoundedCache } from '../../cache/bounded-cache.js';
import { compileAgentPolicies, readStoredPolicies, type AgentPolicyDeps, type StoredAgentPolicies } from '../polled-agent.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import { SharedPolicyReads, type VersionedPolicyReads } from './push-stored-policies.js';

/** `AgentPolicyDeps` whose stores also tell their rows' versions (`SharedPolicyReads`). */
export type PushPolicyDeps = AgentPolicyDeps & { readonly policies: VersionedPolicyReads };

/**
 * How long the stored policies read by name are reused without reading them again
 * (`SharedPolicyReads`); the policies compiled from them are kept while the texts read stay the same
 * (`sameTexts`: before, every agent compiled again each time, 2 % of the push verifier's busy time at
 * 500 agents, half of it the AK's import). The pull loop keeps them for as long
 * as it polls the agent; a push agent's two requests per attestation would otherwise read both stores
 * twice. An enrolment change (another policy name, accept list, AK, or a new enrolment) is seen at once
 * (`sameEnrolment`), read after the enrolment (`readStoredPolicies`); so is a policy this process
 * updated or deleted (`PolicyCache.changeCount`). (With 10 s, every fifth attestation at a 2 s
 * interval read both stores, the runtime policy whole, and parsed the AK again.)
 */
const POLICY_REUSE_MS = 30_000;
/**
 * How often a kept read's row version is checked (`SharedPolicyReads`): a new text stored by another
 * process under the same name is seen within about this long (before, up to a minute: a compiled copy
 * 30 s old from a read 30 s old). One short statement per name, not per agent.
 */
const POLICY_CHECK_MS = 2_000;
/**
 * Policy names whose stored text the push agents share (`SharedPolicyReads`): a fleet has a few,
 * and each may be megabytes of text, so far fewer than the agents.
 */
const SHARED_READS_CAPACITY = 32;

/**
 * How far apart an enrolment's time (`enrolledAt`, the database's clock rounded down to the second) and
 * a read's start (the database's clock as this process reads it, `DatabaseClock`) may be: 1 s of
 * rounding plus 2 s for the offset's error. A read that started that soon after an enrolment is not
 * trusted to have seen the text stored before it; it costs one read more.
 */
const ENROLMENT_CLOCK_MARGIN_MS = 3_000;

interface CompiledPolicies {
  readonly from: VerifierAgentRecord;
  /**
   * What they were compiled from: the shared reads' values, compared by identity, then by text. A
   * new read (expired, a changed version, a change this process made) is a new copy; it compiles
   * again when its text differs.
   */
  readonly stored: StoredAgentPolicies;
  readonly policies: AgentPolicies;
}

/** The push agents' compiled policies, per agent, as `PushAttestations` reads them in both phases. */
export class PushPolicyCache {
  private readonly compiled: BoundedCache<string, CompiledPolicies>;
  private readonly shared: SharedPolicyReads;

  constructor(
    private readonly deps: PushPolicyDeps,
    capacity: number,
    /** Now in unix ms on the database's clock, which dates the enrolments (`SharedPolicyReads`). */
    clock: () => number,
  ) {
    this.compiled = new BoundedCache(capacity);
    this.shared = new SharedPolicyReads(deps.policies, deps.cache, POLICY_REUSE_MS, POLICY_CHECK_MS, SHARED_READS_CAPACITY, clock);
  }

  /** The agent's compiled policies, reused while its enrolment is unchanged and the stored texts are the ones read. */
  async of(record: VerifierAgentRecord): Promise<AgentPolicies> {
    return (await this.read(record))();
  }

  /**
   * `of` in two steps: what the database holds is read first (its errors are the caller's), and
   * the function returned compiles it (it throws when a stored value no longer parses or compiles).
   */
  async read(record: VerifierAgentRecord): Promise<() => AgentPolicies> {
    // Read after the enrolment: the text an operator stored before enrolling the agent is the one it
    // is judged by. `enrolledAt` is the database's clock in whole seconds and a read's start is the
    // database's clock as read here: a read kept from up to ENROLMENT_CLOCK_MARGIN_MS after it counts as too old.
    // Usually no statement: the shared reads answer from memory, checking a name's version every
    // POLICY_CHECK_MS.
    const stored = await readStoredPolicies(record, { policies: this.shared.since(record.enrolledAt * 1000 + ENROLMENT_CLOCK_MARGIN_MS) });
    const cached = this.compiled.get(record.agentId);
    if (cached !== undefined) {
      if (sameEnrolment(cached.from, record) && sameTexts(cached.stored, stored)) {
        // A new read of the same texts (each shared read is renewed every POLICY_REUSE_MS) compiles to
        // the same policies: kept, and the new read remembered so the next comparison is by identity.
        if (cached.stored.runtime !== stored.runtime || cached.stored.mb !== stored.mb) this.compiled.set(record.agentId, { ...cached, stored });
        return () => cached.policies;
      }
      this.compiled.delete(record.agentId);
    }
    return () => {
      const policies = compileAgentPolicies(record, stored, this.deps);
      this.compiled.set(record.agentId, { from: record, stored, policies });
      return policies;
    };
  }
}

/**
 * True when the policies compiled from `a` hold for `b`: the same policies, accept lists, AK and
 * enrolment. Compared field by field (no key text built twice per attestation). The enrolment by its
 * number (`VerifierAgentRecord.enrolment`), not its time: two enrolments within one second have the
 * same `enrolledAt`.
 */
function sameEnrolment(a: VerifierAgentRecord, b: VerifierAgentRecord): boolean {
  return (
    a.tpmPolicy === b.tpmPolicy &&
    a.runtimePolicyName === b.runtimePolicyName &&
    a.mbPolicyName === b.mbPolicyName &&
    a.imaSignVerificationKeys === b.imaSignVerificationKeys &&
    sameList(a.acceptTpmHashAlgs, b.acceptTpmHashAlgs) &&
    sameList(a.acceptTpmEncryptionAlgs, b.acceptTpmEncryptionAlgs) &&
    sameList(a.acceptTpmSigningAlgs, b.acceptTpmSigningAlgs) &&
    a.akTpm === b.akTpm &&
    a.enrolment === b.enrolment
  );
}

/**
 * True when `a` and `b` hold the same stored texts, the only parts of them `compileAgentPolicies`
 * reads (the runtime policy's checksum is not trusted for it: the texts are compared, a few µs for
 * the fleet's 55 KB and 44 KB, against about 0.2 ms to compile again with the AK imported anew).
 */
function sameTexts(a: StoredAgentPolicies, b: StoredAgentPolicies): boolean {
  const runtime = a.runtime === b.runtime || (a.runtime !== undefined && b.runtime !== undefined && a.runtime.runtimePolicy === b.runtime.runtimePolicy);
  return runtime && (a.mb === b.mb || (a.mb !== undefined && b.mb !== undefined && a.mb.mbPolicy === b.mb.mbPolicy));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
