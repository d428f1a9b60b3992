import type { FastifyInstance } from 'fastify';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { BootLogMemo } from '../../attestation/boot-log-memo.js';
import type { PushEngineOptions } from '../../attestation/push-decision.js';
import type { DatabaseClock } from '../../db/database-clock.js';
import type { VerifierAgentRepository } from '../verifier-agent-repository.js';
import { pushTimeoutSeconds, type VerifierConfig } from '../verifier-config.js';
import { DatabaseOutage } from './database-outage.js';
import { PushAttestations } from './push-attestations.js';
import { PushInsertBatch, pushInsertDelayMs } from './push-insert-batch.js';
import { PushLiveness } from './push-liveness.js';
import type { PushPolicyDeps } from './push-policy-cache.js';
import { PushBootLogStore } from './push-boot-log-store.js';
import { PushRepository } from './push-repository.js';
import { registerPushRoutes } from './push-routes.js';
import { PushSessionRepository } from './push-session-repository.js';
import { PushSessions } from './push-sessions.js';
import { PushVerdictStore } from './push-verdict-store.js';
import { SlowHashGate } from './slow-hash-gate.js';
import { PushVerdictWriter, type PushVerdictAudit } from './push-verdict-writer.js';
import { verdictBatchDelayMs } from '../verdict-batch-delay.js';
import type { VerifierHealth } from '../verifier-health.js';
import type { VerifierMetrics } from '../verifier-metrics.js';
import type { FailureAnnouncer } from '../failure-announcer.js';

export interface PushServiceDeps {
  readonly app: FastifyInstance;
  readonly knex: Knex;
  readonly agents: VerifierAgentRepository;
  /** The verdicts' audit records (signed as the pull loop's are, `verdictEvents`) and what else their transaction stores. */
  readonly verdictAudit: PushVerdictAudit;
  /** PostgreSQL: the verdicts' transaction on a node-postgres connection with prepared statements, as the pull loop's. */
  readonly prepared: boolean;
  readonly policies: PushPolicyDeps;
  readonly config: Readonly<VerifierConfig>;
  readonly owner: string;
  readonly engine: PushEngineOptions;
  /** The boot logs this process verified (`PushAttestationSettings.bootLogs`). */
  readonly bootLogs?: BootLogMemo;
  readonly log: Logger;
  /** Told about push verdicts that wait to be stored, as the pull loop tells it about its rounds. */
  readonly health: VerifierHealth;
  /** Counts push verdicts' waits given up on and their failed writes; absent in tests that do not look. */
  readonly metrics?: Pick<VerifierMetrics, 'verdictWaitGivenUp' | 'writeFailed'> | undefined;
  /** Announces push agents whose stored verdict failed them (the pull loop's announcer: same webhooks, same agents told). */
  readonly failures: FailureAnnouncer;
  /** The database's clock: push agents' times are stamped and their silences measured on it, by every process alike. */
  readonly clock: Pick<DatabaseClock, 'nowMs' | 'latestNowMs'>;
}

/** The push side of a verifier process: its routes, sessions, attestations and liveness sweep. */
export interface PushService {
  readonly sessions: PushSessions;
  /** Where the sessions' token hashes run; remembers when it was busy (`SlowHashGate.busy`). */
  readonly slowHashes: SlowHashGate;
  readonly attestations: PushAttestations;
  /** Fails push agents silent past their timeout (not the liveness checks of nodes without a TPM). */
  readonly silenceSweep: PushLiveness;
  /** Stores the push verdicts in batches; `close()` stores what waits and resolves when every verdict has its answer. */
  readonly verdicts: PushVerdictWriter;
  /** Phase 1's batched inserts; `close()` sends what waits and resolves when every statement has answered. */
  readonly inserts: PushInsertBatch;
}

/** Builds the push side and registers its `/v3.0` routes on `app` (the silence sweep starts with `silenceSweep.start()`). */
export function createPushService(deps: PushServiceDeps): PushService {
  const { config } = deps;
  const repository = new PushRepository(deps.knex);
  const now = (): number => deps.clock.nowMs();
  const timeout = pushTimeoutSeconds(config);
  // One storm while refusals come less than a timeout + the first-attestation grace after the backlog
  // drained: a refused agent comes back after the backlog's expected time, and a busy time that ended
  // between two waves would otherwise be replaced by the next, whose start may lie past an agent's deadline.
  const slowHashes = new SlowHashGate(undefined, undefined, (timeout + config.pushNonceLifetime) * 1000, now);
  const sessions = new PushSessions(new PushSessionRepository(deps.knex), deps.agents, {
    nonceLifetime: config.pushNonceLifetime,
    sessionLifetime: config.pushSessionLifetime,
    verifierId: config.verifierId,
    silence: { timeoutSeconds: timeout, firstAttestationGraceSeconds: config.pushNonceLifetime },
    now,
    slowHashes,
  });
  // Two outages less than a timeout apart may both lie in one agent's silence: one outage.
  const outage = new DatabaseOutage(deps.knex, timeout * 1000, now);
  const verdicts = new PushVerdictWriter(
    deps.knex,
    deps.agents,
    deps.verdictAudit,
    verdictBatchDelayMs(config.quoteInterval, config.leaseSeconds),
    deps.log,
    deps.health,
    deps.prepared,
    () => deps.metrics?.writeFailed(),
  );
  const inserts = new PushInsertBatch(repository, pushInsertDelayMs(config.quoteInterval), deps.log);
  const store = new PushVerdictStore(
    { repository, writer: verdicts, failures: deps.failures, health: deps.health, metrics: deps.metrics, log: deps.log },
    { verifierId: config.verifierId, owner: deps.owner, leaseSeconds: config.leaseSeconds },
  );
  const attestations = new PushAttestations(
    { agents: deps.agents, repository, inserts, sessions, verdicts: store, policies: deps.policies, bootLogStore: new PushBootLogStore(deps.knex), health: deps.health, metrics: deps.metrics, log: deps.log },
    {
      verifierId: config.verifierId,
      owner: deps.owner,
      quoteInterval: config.quoteInterval,
      challengeLifetime: config.pushChallengeLifetime,
      engine: deps.engine,
      ...(deps.bootLogs === undefined ? {} : { bootLogs: deps.bootLogs }),
      now,
    },
  );
  registerPushRoutes(deps.app, {
    sessions,
    attestations,
    quoteInterval: config.quoteInterval,
    evidenceBodyBudget: config.pushEvidenceBodyBudget,
  });
  const silenceSweep = new PushLiveness(
    // Silence is judged on the latest the database's time may be: an agent is never found silent late.
    { repository, verdicts: store, sessions, isJudging: (agentId) => attestations.isJudging(agentId), outage, slowHashes, log: deps.log, now: () => deps.clock.latestNowMs() },
    {
      verifierId: config.verifierId,
      timeout,
      firstAttestationGrace: config.pushNonceLifetime,
      severityPolicy: deps.engine.severityPolicy,
      // A quarter of the timeout: an agent is failed at most 25 % after its deadline.
      everySeconds: Math.max(0.5, Math.min(30, timeout / 4)),
    },
  );
  return { sessions, slowHashes, attestations, silenceSweep, verdicts, inserts };
}
