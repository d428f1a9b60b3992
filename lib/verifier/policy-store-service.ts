import type { Knex } from 'knex';
import { inject, injectable } from 'tsyringe';
import type { ChangeRecord } from './admin-change-record.js';
import { PolicyCache } from './policy-cache.js';
import { PullScheduler } from './pull-scheduler.js';
import { VerifierAgentRepository } from './verifier-agent-repository.js';
import type { VerifierConfig } from './verifier-config.js';
import { PolicyNotFound } from './verifier-errors.js';
import { VerifierPolicyRepository, type InUse, type PolicyScope, type StoredMbPolicy, type StoredRuntimePolicy } from './verifier-policy-repository.js';
import { VERIFIER_CONFIG, VERIFIER_KNEX, VERIFIER_OWNER } from './verifier-tokens.js';

/**
 * The verifier's two named policy stores (spec §4.4–4.5: `/allowlists`, `/mbpolicies`). Policies
 * arrive already checked (`checkRuntimePolicy`, `checkMbPolicy`); an update or delete drops the
 * compiled copy from the cache, and with it the push routes' shared read and compiled policies of
 * every name (`PolicyCache.changeCount`, one count for all); an update makes the agents this process
 * polls with it reload at once (those other processes poll, within `POLICY_VERSION_CHECK_MS`:
 * `PolicyVersionWatch`); a policy in use cannot be deleted (409). A policy is created as its creator's
 * tenant's; every other call is narrowed to a `PolicyScope`, outside which a policy is 404 exactly as an unknown one.
 * A change appends its audit `record` in its own transaction: both commit, or neither.
 */
@injectable()
export class PolicyStoreService {
  constructor(
    private readonly policies: VerifierPolicyRepository,
    private readonly agents: VerifierAgentRepository,
    private readonly cache: PolicyCache,
    private readonly scheduler: PullScheduler,
    @inject(VERIFIER_CONFIG) private readonly config: Readonly<VerifierConfig>,
    @inject(VERIFIER_OWNER) private readonly owner: string,
    @inject(VERIFIER_KNEX) private readonly knex: Knex,
  ) {}

  /** Stores `policy` as `tenant`'s. @throws VerifierConflict when the name is taken, by any tenant. */
  async addRuntimePolicy(policy: StoredRuntimePolicy, tenant: string, record: ChangeRecord): Promise<void> {
    await this.change(record, (policies) => policies.insertRuntime(policy, tenant));
  }

  /** Replaces a stored runtime policy; the agents using it are reloaded. @throws PolicyNotFound */
  async updateRuntimePolicy(policy: StoredRuntimePolicy, scope: PolicyScope, record: ChangeRecord): Promise<void> {
    await this.change(record, async (policies) => {
      if (!(await policies.updateRuntime(policy, scope))) throw new PolicyNotFound('runtime policy', policy.name);
    });
    this.cache.invalidate(policy.name);
    await this.reloadAgentsUsing(policy.name);
  }

  /** The policy and the agents enrolled with it (`agentsUsing`). @throws PolicyNotFound */
  async showRuntimePolicy(name: string, scope: PolicyScope): Promise<InUse<StoredRuntimePolicy>> {
    const stored = await this.policies.findRuntime(name, scope);
    if (stored === undefined) {
      throw new PolicyNotFound('runtime policy', name);
    }
    return { ...stored, agentsUsing: await this.policies.agentsUsing('runtime', name) };
  }

  listRuntimePolicies(scope: PolicyScope): Promise<string[]> {
    return this.policies.listRuntimeNames(scope);
  }

  /** @throws PolicyNotFound; VerifierConflict when an agent uses it. */
  async deleteRuntimePolicy(name: string, scope: PolicyScope, record: ChangeRecord): Promise<void> {
    await this.change(record, async (policies) => {
      if (!(await policies.deleteRuntime(name, scope))) throw new PolicyNotFound('runtime policy', name);
    });
    this.cache.invalidate(name);
  }

  /** Stores `policy` as `tenant`'s. @throws VerifierConflict when the name is taken, by any tenant. */
  async addMbPolicy(policy: StoredMbPolicy, tenant: string, record: ChangeRecord): Promise<void> {
    await this.change(record, (policies) => policies.insertMb(policy, tenant));
  }

  async updateMbPolicy(policy: StoredMbPolicy, scope: PolicyScope, record: ChangeRecord): Promise<void> {
    await this.change(record, async (policies) => {
      if (!(await policies.updateMb(policy, scope))) throw new PolicyNotFound('measured boot policy', policy.name);
    });
    this.cache.invalidate(policy.name);
    await this.reloadAgentsUsing(policy.name);
  }

  /** `showRuntimePolicy` for a refstate. @throws PolicyNotFound */
  async showMbPolicy(name: string, scope: PolicyScope): Promise<InUse<StoredMbPolicy>> {
    const stored = await this.policies.findMb(name, scope);
    if (stored === undefined) {
      throw new PolicyNotFound('measured boot policy', name);
    }
    return { ...stored, agentsUsing: await this.policies.agentsUsing('mb', name) };
  }

  listMbPolicies(scope: PolicyScope): Promise<string[]> {
    return this.policies.listMbNames(scope);
  }

  async deleteMbPolicy(name: string, scope: PolicyScope, record: ChangeRecord): Promise<void> {
    await this.change(record, async (policies) => {
      if (!(await policies.deleteMb(name, scope))) throw new PolicyNotFound('measured boot policy', name);
    });
    this.cache.invalidate(name);
  }

  /** Runs `work` (which throws when there is nothing to change) and appends `record`, in one transaction. */
  private async change(record: ChangeRecord, work: (policies: VerifierPolicyRepository) => Promise<void>): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await work(new VerifierPolicyRepository(trx));
      await record(trx);
    });
  }

  /** Agents of this verifier polled here with the updated policy pick it up at their next round. */
  private async reloadAgentsUsing(name: string): Promise<void> {
    const records = await this.agents.listRecords(this.config.verifierId);
    for (const record of records) {
      if ((record.runtimePolicyName === name || record.mbPolicyName === name) && record.owner === this.owner) {
        this.scheduler.wake(record.agentId);
      }
    }
  }
}
