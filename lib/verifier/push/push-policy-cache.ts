import type { AgentPolicies } from '../../attestation/agent-policies.js';
import { BoundedCache } from '../../cache/bounded-cache.js';
import { compileAgentPolicies, readStoredPolicies, type AgentPolicyDeps } from '../polled-agent.js';
import type { VerifierAgentRecord } from '../verifier-agent-record.js';
import { SharedPolicyReads } from './push-stored-policies.js';

/**
 * How long the compiled policies of a push agent are reused without compiling them again, and the
 * stored policies read by name without reading them again (`SharedPolicyReads`). The pull loop keeps
 * them for as long as it polls the agent; a push agent's two requests per attestation would otherwise
 * read both stores twice. An enrolment change (another policy name, accept list or AK) is seen at
 * once (`sameEnrolment`). A new text under the same policy name is seen within a minute: compiled
 * at most 30 s ago from a read at most 30 s old (with 10 s, every fifth attestation at a 2 s interval
 * read both stores, the runtime policy whole, and parsed the AK again).
 */
const POLICY_REUSE_MS = 30_000;

interface CompiledPolicies {
  readonly from: VerifierAgentRecord;
  readonly at: number;
  readonly policies: AgentPolicies;
}

/** The push agents' compiled policies, per agent, as `PushAttestations` reads them in both phases. */
export class PushPolicyCache {
  private readonly compiled: BoundedCache<string, CompiledPolicies>;
  private readonly deps: AgentPolicyDeps;

  constructor(deps: AgentPolicyDeps, capacity: number) {
    this.compiled = new BoundedCache(capacity);
    this.deps = { ...deps, policies: new SharedPolicyReads(deps.policies, POLICY_REUSE_MS, capacity) };
  }

  /** The agent's compiled policies, reused for `POLICY_REUSE_MS` while its enrolment is unchanged. */
  async of(record: VerifierAgentRecord): Promise<AgentPolicies> {
    return (await this.read(record))();
  }

  /**
   * `of` in two steps: what the database holds is read first (its errors are the caller's), and
   * the function returned compiles it (it throws when a stored value no longer parses or compiles).
   */
  async read(record: VerifierAgentRecord): Promise<() => AgentPolicies> {
    const cached = this.compiled.get(record.agentId);
    const now = Date.now();
    if (cached !== undefined && sameEnrolment(cached.from, record) && now - cached.at < POLICY_REUSE_MS) {
      return () => cached.policies;
    }
    const stored = await readStoredPolicies(record, this.deps);
    return () => {
      const policies = compileAgentPolicies(record, stored, this.deps);
      this.compiled.set(record.agentId, { from: record, at: now, policies });
      return policies;
    };
  }
}

/**
 * True when the policies compiled from `a` hold for `b`: the same policies, accept lists, AK and
 * enrolment. Compared field by field (no key text built twice per attestation).
 */
function sameEnrolment(a: VerifierAgentRecord, b: VerifierAgentRecord): boolean {
  return (
    a.tpmPolicy === b.tpmPolicy &&
    a.runtimePolicyName === b.runtimePolicyName &&
    a.mbPolicyName === b.mbPolicyName &&
    a.imaSignVerificationKeys === b.imaSignVerificationKeys &&
    sameList(a.acceptTpmHashAlgs, b.acceptTpmHashAlgs) &&
    sameList(a.acceptTpmSigningAlgs, b.acceptTpmSigningAlgs) &&
    a.akTpm === b.akTpm &&
    a.enrolledAt === b.enrolledAt
  );
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
