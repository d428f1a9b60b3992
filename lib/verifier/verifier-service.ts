import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { inject, injectable } from 'tsyringe';
import { initialAgentState } from '../attestation/agent-state.js';
import { OperationalState } from '../attestation/operational-state.js';
import { verifyIdentityQuote, type IdentityQuoteResult } from '../attestation/verify-identity-quote.js';
import { checkEnrolment, type PolicyReference } from './enrolment-check.js';
import { PullScheduler } from './pull-scheduler.js';
import { agentStatusResults, type AgentStatusResults, type StatusContext } from './status-results.js';
import { statusFreshnessBounds } from './freshness-bounds.js';
import type { VerifierAgentEnrolment } from './verifier-agent-record.js';
import { VerifierAgentRepository, type HistoryPage } from './verifier-agent-repository.js';
import type { VerifierConfig } from './verifier-config.js';
import type { AddAgentBody } from './verifier-dtos.js';
import type { IdentityQuery } from './verify-route-dtos.js';
import { PolicyNotFound, VerifierAgentNotFound, VerifierConflict } from './verifier-errors.js';
import { IronlimeError } from '../../interfaces/errors.js';
import { VerifierPolicyRepository } from './verifier-policy-repository.js';
import { VerifierHealth } from './verifier-health.js';
import { VERIFIER_CLOCK, VERIFIER_CONFIG, VERIFIER_KNEX, VERIFIER_LOGGER, VERIFIER_OWNER } from './verifier-tokens.js';
import type { DatabaseClock } from '../db/database-clock.js';
import { messageOf } from './error-message.js';
import type { ChangeRecord } from './admin-change-record.js';
import { lockNodeId } from './node-id-lock.js';
import { refuseReservedAgentId } from './reserved-agent-ids.js';
import { DEFAULT_TENANT, type SeesTenant } from './verifier-access.js';

/** States an agent is deleted in at once; in the others DELETE is Keylime's TERMINATED handshake (202). */
const DELETE_AT_ONCE: readonly OperationalState[] = [
  OperationalState.REGISTERED,
  OperationalState.SAVED,
  OperationalState.FAILED,
  OperationalState.INVALID_QUOTE,
  OperationalState.TENANT_FAILED,
];

/**
 * The verifier's decisions behind its routes, independent of HTTP (spec §4): enrolment (every field
 * checked, policies and agent stored in one transaction, then polled by this process), status,
 * listing, the DELETE → TERMINATED handshake, stop and reactivate, and the public identity check
 * (`POST /verify/evidence` is evidence-route.ts). Operator changes are
 * written to the database first, then the scheduler is told to re-read the agent.
 */
@injectable()
export class VerifierService {
  /** The problem `readiness` last logged, and when (ms); undefined while ready. */
  private notReadyLogged: { problem: string; at: number } | undefined;

  constructor(
    private readonly agents: VerifierAgentRepository,
    private readonly policies: VerifierPolicyRepository,
    private readonly scheduler: PullScheduler,
    private readonly health: VerifierHealth,
    @inject(VERIFIER_KNEX) private readonly knex: Knex,
    @inject(VERIFIER_CONFIG) private readonly config: Readonly<VerifierConfig>,
    @inject(VERIFIER_OWNER) private readonly owner: string,
    @inject(VERIFIER_LOGGER) private readonly log: Logger,
    @inject(VERIFIER_CLOCK) private readonly clock: Pick<DatabaseClock, 'readings'>,
  ) {}

  /**
   * Enrols `agentId` (spec §4.1) as `tenant`'s in state START and starts polling it; `audit` (its
   * audit record) is appended in the enrolment's transaction. A new policy in
   * the body is stored as `tenant`'s; a policy named by the body must be `tenant`'s, so that no other
   * tenant can read or change what this agent is attested with.
   * @throws VerifierConflict (409) for a known agent, an id enrolled for liveness, or a named policy
   *   that exists while a new one was given; VerifierAgentNotFound (404) for an id (either kind) of a
   *   tenant the caller does not `sees`; PolicyNotFound (404) for a named policy that does not exist or is another tenant's; 400
   *   errors naming a bad field or the reserved id `fleet`.
   */
  async enrol(agentId: string, body: AddAgentBody, tenant: string, audit: ChangeRecord, sees: SeesTenant): Promise<void> {
    refuseReservedAgentId(agentId);
    const checked = checkEnrolment(agentId, body);
    const push = body.attestation_mode === 'push';
    const enrolment: VerifierAgentEnrolment = {
      agentId,
      v: push ? null : (body.v ?? null),
      ip: push ? null : (body.cloudagent_ip ?? null),
      port: push ? null : (body.cloudagent_port ?? null),
      verifierIp: body.verifier_ip ?? null,
      verifierPort: body.verifier_port ?? null,
      tpmPolicy: body.tpm_policy,
      runtimePolicyName: referenceName(checked.runtime),
      mbPolicyName: referenceName(checked.mb),
      imaSignVerificationKeys: body.ima_sign_verification_keys ?? '',
      metaData: body.metadata ?? '{}',
      revocationKey: body.revocation_key ?? '',
      acceptTpmHashAlgs: body.accept_tpm_hash_algs,
      acceptTpmEncryptionAlgs: body.accept_tpm_encryption_algs,
      acceptTpmSigningAlgs: body.accept_tpm_signing_algs,
      akTpm: body.ak_tpm,
      mtlsCert: push ? null : (body.mtls_cert ?? null),
      supportedVersion: checked.supportedVersion,
      verifierId: this.config.verifierId,
      tenant,
      attestationMode: push ? 'push' : 'pull',
    };
    // A pull agent is this process's from the insert: stored with its answer lost, the sweep takes it up.
    await this.givingAgent(push, async () => {
      await this.knex.transaction(async (trx) => {
        const agents = new VerifierAgentRepository(trx);
        // Under the id's lock, as a liveness enrolment checks this table under it: never both.
        await lockNodeId(trx, agentId);
        // The agent first, as Keylime: a known agent is 409 "already exists" whatever its policies say.
        // Another tenant's node (either kind) is 404, as one that is not there: the admin gate checked the
        // headers, and the node may have been enrolled while the body was on its way.
        await refuseHiddenAgent(trx, agentId, sees);
        if ((await agents.find(agentId)) !== undefined) {
          throw new VerifierConflict(`Agent of uuid ${agentId} already exists`);
        }
        const liveness = (await trx('verifier_liveness').where({ agent_id: agentId }).first('tenant')) as { tenant: string } | undefined;
        if (liveness !== undefined) {
          if (!sees(liveness.tenant)) throw new VerifierAgentNotFound(agentId);
          throw new VerifierConflict(`agent ${agentId} is checked for liveness on this verifier; delete that enrolment first to attest it with a TPM`);
        }
        await this.storeReference(checked.runtime, (p) => this.policies.insertRuntime(p, tenant, trx), (n) => this.policies.holdRuntime(n, tenant, trx), 'runtime policy');
        await this.storeReference(checked.mb, (p) => this.policies.insertMb(p, tenant, trx), (n) => this.policies.holdMb(n, tenant, trx), 'measured boot policy');
        // A push agent attests from the start (GET_QUOTE); nobody polls it, so it has no owner.
        await agents.insert(enrolment, initialAgentState(push ? OperationalState.GET_QUOTE : OperationalState.START), push ? null : this.owner, this.config.leaseSeconds);
        await audit(trx);
      });
      this.log.info({ agentId, ip: enrolment.ip, port: enrolment.port }, 'agent enrolled');
      const record = await this.agents.find(agentId);
      if (record !== undefined && !push) {
        await this.scheduler.adopt(record);
      }
    });
  }

  /**
   * `GET /agents/{id}`. The tenant is checked on the row read here, not only by the admin gate before:
   * the id may have been enrolled by another tenant in between. @throws VerifierAgentNotFound
   */
  async status(agentId: string, sees: SeesTenant): Promise<AgentStatusResults> {
    const record = await this.agents.find(agentId);
    if (record === undefined || !sees(record.tenant ?? DEFAULT_TENANT)) {
      throw new VerifierAgentNotFound(agentId);
    }
    const stored = record.runtimePolicyName === null ? undefined : await this.policies.findRuntime(record.runtimePolicyName);
    return agentStatusResults(record, { ...this.statusContext(), runtimePolicyGenerator: stored?.generator });
  }

  /** `GET /agents[?verifier=][&bulk]`: ids, or with `bulk` a map id → status. */
  async list(verifierId: string | undefined, bulk: boolean, tenant?: string): Promise<{ uuids: string[] } | Record<string, AgentStatusResults>> {
    if (!bulk) {
      return { uuids: await this.agents.listIds(verifierId, tenant) };
    }
    const records = await this.agents.listRecords(verifierId, tenant);
    const generators = new Map<string, number>();
    for (const name of new Set(records.map((r) => r.runtimePolicyName).filter((n): n is string => n !== null))) {
      const stored = await this.policies.findRuntime(name);
      if (stored !== undefined) {
        generators.set(name, stored.generator);
      }
    }
    const context = this.statusContext();
    return Object.fromEntries(
      records.map((r) => [
        r.agentId,
        agentStatusResults(r, { ...context, runtimePolicyGenerator: r.runtimePolicyName === null ? undefined : generators.get(r.runtimePolicyName) }),
      ]),
    );
  }

  /**
   * `DELETE /agents/{id}` (spec §4.3): an agent that is not being polled is deleted now (`deleted`);
   * a polled one is set TERMINATED and deleted by the loop of the process that polls it
   * (`terminating`, HTTP 202; the tenant polls until 404). `record` is appended in the change's
   * transaction, with the outcome. @throws VerifierAgentNotFound
   */
  async delete(agentId: string, record: (trx: Knex.Transaction, outcome: 'deleted' | 'terminating') => Promise<void>, sees: SeesTenant): Promise<'deleted' | 'terminating'> {
    const outcome = await this.knex.transaction(async (trx): Promise<'deleted' | 'terminating'> => {
      await refuseHiddenAgent(trx, agentId, sees);
      const agents = new VerifierAgentRepository(trx);
      const found = await agents.find(agentId);
      if (found === undefined || found.verifierId !== this.config.verifierId) {
        throw new VerifierAgentNotFound(agentId);
      }
      // Nobody polls a push agent: nothing would finish a TERMINATED handshake.
      const done = DELETE_AT_ONCE.includes(found.state.operationalState) || found.attestationMode === 'push' ? 'deleted' : 'terminating';
      if (done === 'deleted') {
        await agents.delete(agentId);
      } else if ((await agents.stopByOperator(agentId, this.config.verifierId, OperationalState.TERMINATED)) === undefined) {
        throw new VerifierAgentNotFound(agentId);
      }
      await record(trx, done);
      return done;
    });
    this.scheduler.wake(agentId);
    this.log.info({ agentId }, outcome === 'deleted' ? 'agent deleted' : 'agent terminating');
    return outcome;
  }

  /**
   * `PUT /agents/{id}/reactivate`: START, polled by this process, judged afresh (`decideReactivation`:
   * severity, last event and last success cleared); `record` is appended in its transaction. @throws VerifierAgentNotFound
   */
  async reactivate(agentId: string, record: ChangeRecord, sees: SeesTenant): Promise<void> {
    const before = await this.givingAgent(false, () =>
      this.operatorChange(agentId, record, sees, (agents) => agents.reactivate(agentId, this.config.verifierId, this.owner, this.config.leaseSeconds)),
    );
    this.scheduler.wake(agentId);
    this.log.info({ agentId, from: before }, 'agent reactivated');
  }

  /** `PUT /agents/{id}/stop`: TENANT_FAILED, polling stops; `record` is appended in its transaction. @throws VerifierAgentNotFound */
  async stop(agentId: string, record: ChangeRecord, sees: SeesTenant): Promise<void> {
    const before = await this.operatorChange(agentId, record, sees, (agents) =>
      agents.stopByOperator(agentId, this.config.verifierId, OperationalState.TENANT_FAILED, { from: STATES_BUT_TERMINATED }),
    );
    this.scheduler.wake(agentId);
    this.log.info({ agentId, from: before }, 'agent stopped');
  }

  /**
   * Runs `change`, which gives this process a pull agent to poll (unless `push`). A failure other than a
   * refusal (the database's: a COMMIT whose answer was lost, a read after it) may have stored it all the
   * same, with nobody polling the agent until its lease lapses: the lease sweep takes it up
   * (`PullScheduler.ownershipUnknown`).
   */
  private async givingAgent<T>(push: boolean, change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } catch (error) {
      if (!push && !(error instanceof IronlimeError)) this.scheduler.ownershipUnknown();
      throw error;
    }
  }

  /** Runs an operator's change of the agent's state and appends its `record` in one transaction; resolves to the state before. */
  private async operatorChange(
    agentId: string,
    record: ChangeRecord,
    sees: SeesTenant,
    change: (agents: VerifierAgentRepository) => Promise<OperationalState | undefined>,
  ): Promise<OperationalState> {
    return this.knex.transaction(async (trx) => {
      await refuseHiddenAgent(trx, agentId, sees);
      const before = await change(new VerifierAgentRepository(trx));
      if (before === undefined) {
        throw new VerifierAgentNotFound(agentId);
      }
      await record(trx);
      return before;
    });
  }

  /**
   * `GET /health` (ironlime extension, public): ready only when the database answers within a second
   * and the pull loop and the liveness monitor have stored every verdict they reached and the last lease sweep worked.
   */
  async readiness(now = Date.now()): Promise<{ ready: boolean; problem: string | null; agents: number; unstored_rounds: number }> {
    const problem = this.health.problem() ?? (await pingDatabase(this.knex));
    const unstored = this.health.unstoredRounds;
    // The route is public: SQL text and the database's messages go to the log only, and only when
    // they change or a minute after they were last logged, so that polling it cannot flood the log.
    if (problem === undefined) {
      if (this.notReadyLogged !== undefined) this.log.info('verifier ready');
      this.notReadyLogged = undefined;
    } else if (this.notReadyLogged?.problem !== problem || now - this.notReadyLogged.at >= NOT_READY_LOG_INTERVAL_MS) {
      this.notReadyLogged = { problem, at: now };
      this.log.warn({ problem }, 'verifier not ready');
    }
    return { ready: problem === undefined, problem: problem === undefined ? null : publicProblem(unstored + this.health.unstoredLivenessVerdicts, this.health.unloadedAgents), agents: this.scheduler.size, unstored_rounds: unstored };
  }

  /**
   * A page of an agent's rounds (kept after it is deleted), newest first from before id `before`, that
   * were written for `tenant`'s node of this id; every tenant's when undefined (a client certificate).
   * At most `limit` rows and about `MAX_HISTORY_PAGE_BYTES` (`VerifierAgentRepository.history`).
   */
  history(agentId: string, limit: number, tenant: string | undefined, before?: number): Promise<HistoryPage> {
    return this.agents.history(agentId, limit, tenant, before);
  }

  /** `GET /verify/identity` (spec §4.6): AK signature, nonce and pcrDigest only. @throws VerifierAgentNotFound */
  async verifyIdentity(query: IdentityQuery): Promise<IdentityQuoteResult> {
    const record = await this.agents.find(query.agent_uuid);
    if (record === undefined) {
      throw new VerifierAgentNotFound(query.agent_uuid);
    }
    return verifyIdentityQuote({ quote: query.quote, nonce: query.nonce, hashAlg: query.hash_alg, akTpm: record.akTpm });
  }

  /** Stores a new policy, or checks (and holds) that a named one is the enrolling tenant's. */
  private async storeReference<T>(
    reference: PolicyReference<T>,
    insert: (policy: T) => Promise<void>,
    hold: (name: string) => Promise<boolean>,
    kind: 'runtime policy' | 'measured boot policy',
  ): Promise<void> {
    if (reference.kind === 'new') {
      await insert(reference.policy);
    } else if (reference.kind === 'existing' && !(await hold(reference.name))) {
      throw new PolicyNotFound(kind, reference.name);
    }
  }

  private statusContext(): Omit<StatusContext, 'runtimePolicyGenerator'> {
    return {
      quoteInterval: this.config.quoteInterval,
      verifierHost: this.config.host,
      verifierPort: this.config.port,
      freshnessBound: statusFreshnessBounds(this.config).pass,
      clock: this.clock.readings(),
    };
  }
}

/** How often `readiness` logs an unchanged problem again. */
const NOT_READY_LOG_INTERVAL_MS = 60_000;

/** What `/health` says when not ready: why, without the database's own words. */
function publicProblem(unstoredVerdicts: number, unloadedAgents: number): string {
  if (unstoredVerdicts > 0) return 'verdicts wait to be stored: the database refuses or cannot be reached';
  if (unloadedAgents > 0) return `${unloadedAgents} agent(s) not polled: their row or policies cannot be read from the database`;
  return 'the database refuses or cannot be reached';
}

/**
 * Locks the agent's row and refuses (404, as an agent that is not there) another tenant's: the admin
 * gate checked the tenant on the headers, and the id may have been enrolled since.
 */
async function refuseHiddenAgent(trx: Knex.Transaction, agentId: string, sees: SeesTenant): Promise<void> {
  const row = (await trx('verifier_agents').select('tenant').where({ agent_id: agentId }).forUpdate().first()) as { tenant: string } | undefined;
  if (row !== undefined && !sees(row.tenant)) throw new VerifierAgentNotFound(agentId);
}

/** Undefined when `select 1` answers within `timeoutMs`, else why not. */
async function pingDatabase(knex: Knex, timeoutMs = 1000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the database did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([
      knex.raw('select 1').then(
        () => undefined,
        (error: unknown) => `the database refused: ${messageOf(error)}`,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every state but TERMINATED: stop and reactivate do not bring a deleted agent back. */
const STATES_BUT_TERMINATED: readonly OperationalState[] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10];

function referenceName<T extends { name: string }>(reference: PolicyReference<T>): string | null {
  switch (reference.kind) {
    case 'new':
      return reference.policy.name;
    case 'existing':
      return reference.name;
    case 'none':
      return null;
  }
}

