import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { container as rootContainer, instanceCachingFactory, Lifecycle, type DependencyContainer } from 'tsyringe';
import { createDatabase, type Database } from '../db/database-factory.js';
import { DATABASE } from '../db/database-token.js';
import { DatabaseClock } from '../db/database-clock.js';
import { migrateLatest } from '../db/migrate.js';
import { readConfiguredCaFile } from '../config/read-config-file.js';
import { SERVER_API_VERSIONS, serverApiVersionPolicy } from '../http/api-version.js';
import { createService, type KeylimeService } from '../http/keylime-service.js';
import { ReplyBudget } from '../http/reply-budget.js';
import { OffThreadJson, waitingRepliesFor } from '../http/off-thread-json.js';
import { RepeatedTexts } from '../http/repeated-member-json.js';
import { readIfExists, writeFileAtomic } from '../pki/pem-files.js';
import { CertificateRenewal, type RenewalTiming } from '../pki/certificate-renewal.js';
import { RenewableTls } from '../pki/renewable-tls.js';
import { DATA_DIR_CA_ORIGIN, loadOrCreateClientTls, loadOrCreateServiceTls, type ServiceTls } from '../pki/service-tls.js';
import { MeasuredBootMemo } from '../attestation/mb-check-memo.js';
import { BootLogMemo } from '../attestation/boot-log-memo.js';
import { PolicyCache } from './policy-cache.js';
import { PolicyStoreService } from './policy-store-service.js';
import { RevocationNotifier } from '../revocation/revocation-notifier.js';
import { VerifierProcessRepository } from './verifier-process-repository.js';
import { ProcessLock } from './process-lock.js';
import { PullScheduler } from './pull-scheduler.js';
import { createPushService, type PushService } from './push/push-service.js';
import { AuditPruner } from './audit-pruner.js';
import { HistoryPruner } from './history-pruner.js';
import { RoundWriter, type RoundWrite } from './round-writer.js';
import { ROUND_MATCH_ALLOWANCE_NS } from './round-match-allowance.js';
import type { Statements } from '../db/fixed-statement.js';
import { verdictBatchDelayMs } from './verdict-batch-delay.js';
import { VerifierHealth } from './verifier-health.js';
import { VerifierMetrics } from './verifier-metrics.js';
import { VerifierAgentRepository } from './verifier-agent-repository.js';
import { buildVerifierConfig, verifierSeverityPolicy, type VerifierConfig, type VerifierConfigInput } from './verifier-config.js';
import { VerifierPolicyRepository } from './verifier-policy-repository.js';
import { registerTokenRoutes } from './token-routes.js';
import { registerVerifierRoutes } from './verifier-routes.js';
import { LivenessMonitor } from './liveness/liveness-monitor.js';
import { statusFreshnessBounds } from './freshness-bounds.js';
import { LivenessRepository } from './liveness/liveness-repository.js';
import { registerLivenessRoutes } from './liveness/liveness-routes.js';
import { VerifierService } from './verifier-service.js';
import { auditAdminActions, createVerifierAccess } from './verifier-access.js';
import { registerDashboard } from '../dashboard/dashboard-routes.js';
import { VERIFIER_CLOCK, VERIFIER_CONFIG, VERIFIER_KNEX, VERIFIER_LOGGER, VERIFIER_OWNER } from './verifier-tokens.js';

export interface StartVerifierOptions {
  /** Default: silent. The CLI passes a pino logger on stderr. */
  readonly logger?: Logger;
  /** Receives the "verifier listening on <url>" line. */
  readonly announce?: (line: string) => void;
  readonly parent?: DependencyContainer;
  /**
   * An open database to use instead of opening `databaseUrl` / PGlite (tests, several services in one
   * process). It is migrated but not closed by `close()`.
   */
  readonly database?: Database;
  /**
   * In-process tests only: no TLS, no listening socket, admin routes open — requests go through
   * `service.app.inject(...)`. The pull loop still runs.
   */
  readonly inProcessForTests?: boolean;
  /** Tests of certificate renewal: a short margin and lifetime instead of 30 and 365 days. */
  readonly renewalForTests?: RenewalTiming;
  /** Tests of processes whose clocks differ: this process's clock (unix ms) instead of `Date.now`. */
  readonly processClockForTests?: () => number;
}

/** A running verifier. */
export interface RunningVerifier {
  /** `https://127.0.0.1:8881` (empty for `inProcessForTests`). */
  readonly url: string;
  /** PEM of the CA that issued the TLS certificate: admin client certificates must chain to it, agents should trust it. */
  readonly caCert: string;
  /** The verifier's client certificate towards agents (from the same CA), as renewed while it runs. */
  readonly clientTls: ServiceTls;
  readonly config: Readonly<VerifierConfig>;
  readonly databaseKind: Database['kind'];
  /** This process's name in the agents' `owner` column. */
  readonly owner: string;
  readonly service: KeylimeService;
  readonly container: DependencyContainer;
  /** The pull loop (agents polled here, rounds in flight). */
  readonly scheduler: PullScheduler;
  /** The push side (API 3.0 routes, sessions, attestations, liveness sweep). */
  readonly push: PushService;
  /** Liveness checks of nodes without a TPM (docs/identity.md). */
  readonly liveness: LivenessMonitor;
  /** Stops listening, stops the pull loop (waiting for rounds in flight), releases the leases, closes the database it opened. */
  close(): Promise<void>;
}

/** Verifier serves Keylime's 2.x API (1.0 has no `ak_tpm` in the enrolment). */
const VERIFIER_API_VERSIONS = SERVER_API_VERSIONS.filter((version) => version.startsWith('2.'));

/** File in the data dir holding this verifier's default instance id. */
export const INSTANCE_ID_FILE = 'verifier-instance-id';

/**
 * Starts a verifier from `input` (validated and frozen first; a bad setting throws `InvalidConfig`
 * before anything is created). Zero-config: creates what the data dir lacks — the CA, the TLS server
 * certificate, a client certificate for talking to agents (`<dataDir>/ca`), an instance id, the
 * embedded PGlite database when no `databaseUrl` is given — and applies pending migrations. Then it
 * takes back the agents this instance polled before (a restart after a crash resumes every one of
 * them where it was) and claims unowned ones, and listens over HTTPS (mTLS for admin routes).
 */
export async function startVerifier(input: VerifierConfigInput, options: StartVerifierOptions = {}): Promise<RunningVerifier> {
  const config = buildVerifierConfig(input);
  const severity = verifierSeverityPolicy(config);
  const log = options.logger ?? pino({ level: 'silent' });
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const timing = options.renewalForTests ?? {};
  const tls = await loadOrCreateServiceTls({ dataDir: config.dataDir, serviceName: 'verifier', sans: config.tlsSans, warn: (message) => log.warn(message), ...timing });
  const startClientTls = await loadOrCreateClientTls({ dataDir: config.dataDir, serviceName: 'verifier-client', warn: (message) => log.warn(message), ...timing });
  // Read again at each new connection to an agent: the renewal below replaces it.
  const clientTls = new RenewableTls(startClientTls);
  const owner = config.instanceId ?? (await loadOrCreateInstanceId(config.dataDir));
  const database =
    options.database ??
    (await createDatabase({ dataDir: config.dataDir, ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }) }));
  const ownsDatabase = options.database === undefined;
  const closeDatabase = (): Promise<void> => (ownsDatabase ? database.close() : Promise.resolve());
  let scheduler: PullScheduler | undefined;
  let service: KeylimeService | undefined;
  let closeRevocation = (): Promise<void> => Promise.resolve();
  let pruner: HistoryPruner | undefined;
  let auditPruner: AuditPruner | undefined;
  let push: PushService | undefined;
  let liveness: LivenessMonitor | undefined;
  let renewal: CertificateRenewal | undefined;
  const clock = new DatabaseClock(database.knex, options.processClockForTests);
  try {
    await migrateLatest(database.knex);
    await clock.start();
    const container = createVerifierContainer(config, database, owner, log, options.parent);
    container.register(VERIFIER_CLOCK, { useValue: clock });
    const access = createVerifierAccess(config.dataDir, database.knex, clock);
    const agents = container.resolve(VerifierAgentRepository);
    const health = container.resolve(VerifierHealth);
    let polled: PullScheduler | undefined;
    let writer: RoundWriter | undefined;
    const metrics = new VerifierMetrics(config.quoteInterval, {
      agentStates: () => polled?.agentStates() ?? [],
      unstoredRounds: () => health.unstoredRounds,
      slotCapacity: () => polled?.slotCapacity(),
      verdictBatchDelayMs: () => writer?.batchDelayMs,
      undeliveredRevocations: () => revocation.undelivered(),
    });
    container.register(VerifierMetrics, { useValue: metrics });
    const revocation = new RevocationNotifier({
      webhooks: config.revocationWebhooks ?? [],
      ...(config.revocationWebhookCa === undefined
        ? {}
        : { webhookCa: await readConfiguredCaFile(config.revocationWebhookCa, 'verifier.revocationWebhookCa') }),
      agentTls: clientTls,
      outbox: { knex: database.knex },
      log,
    });
    closeRevocation = () => revocation.close();
    // In the verdicts' transaction: the revocation notices of those that fail an agent.
    const recordRevocations = (statements: Statements, stored: readonly RoundWrite[]): Promise<void> =>
      revocation.recordIn(statements, stored.flatMap((write) => (write.revocation === undefined ? [] : [write.revocation])));
    // With its verdicts, in their transaction: their audit records and their revocation notices.
    writer = new RoundWriter(database.knex, {
      batchDelayMs: verdictBatchDelayMs(config.quoteInterval, config.leaseSeconds),
      audit: { key: access.auditKey, actor: owner },
      alsoStore: recordRevocations,
      prepared: database.kind === 'postgres',
    });
    const agentDeps = {
      policies: container.resolve(VerifierPolicyRepository),
      cache: container.resolve(PolicyCache),
      clientTls,
      requestTimeoutMs: Math.round(config.requestTimeout * 1000),
      measuredBootEvaluate: config.measuredBootEvaluate,
      bootLogs: new RepeatedTexts(),
      replyBudget: new ReplyBudget(config.pullReplyBudget),
      // Its parse is bounded as the request is; its queue never refuses what the reply budget admits.
      offThreadJson: new OffThreadJson({ timeoutMs: Math.round(config.requestTimeout * 1000), maxWaiting: waitingRepliesFor(config.pullReplyBudget) }),
    };
    const engine = {
      severityPolicy: severity,
      measuredBootPolicy: config.measuredBootPolicy,
      failOnTomtou: config.failOnTomtou,
      mbMemo: container.resolve(MeasuredBootMemo),
      matchAllowanceNs: ROUND_MATCH_ALLOWANCE_NS,
    };
    scheduler = new PullScheduler({
      revocation,
      repository: agents,
      processes: new VerifierProcessRepository(database.knex),
      ...(database.newSessionClient === undefined ? {} : { lock: new ProcessLock({ newClient: database.newSessionClient, log }) }),
      writer,
      health,
      metrics,
      agentDeps,
      round: {
        quoteInterval: config.quoteInterval,
        retryInterval: config.retryInterval,
        maxRetries: config.maxRetries,
        exponentialBackoff: config.exponentialBackoff,
        severity,
        engine,
        bootLogs: container.resolve(BootLogMemo),
      },
      clock,
      verifierId: config.verifierId,
      owner,
      leaseSeconds: config.leaseSeconds,
      maxConcurrentRounds: config.maxConcurrentRounds,
      log,
    });
    polled = scheduler;
    container.register(PullScheduler, { useValue: scheduler });
    const inProcess = options.inProcessForTests === true;
    service = createService({
      name: 'verifier',
      apiVersions: serverApiVersionPolicy(VERIFIER_API_VERSIONS),
      bodyLimit: config.bodyLimit,
      maxConnections: config.maxConnections,
      logger: log,
      adminAccess: access.admit,
      ...(inProcess
        ? { insecureAdminForTests: true }
        : { tls: { cert: tls.cert, key: tls.key, ca: tls.ca, clientCaOrigin: DATA_DIR_CA_ORIGIN, requestClientCert: true, requireClientCert: 'routes' as const } }),
    });
    registerVerifierRoutes(service, container);
    registerTokenRoutes(service, access.revocations);
    const livenessRepository = new LivenessRepository(database.knex, { log: access.auditLog, actor: owner });
    liveness = new LivenessMonitor({
      repository: livenessRepository,
      verifierId: config.verifierId,
      clientTls,
      intervalSeconds: config.quoteInterval,
      timeoutMs: Math.round(config.requestTimeout * 1000),
      maxMisses: config.maxRetries,
      health,
      log,
      unstoredFailuresFile: path.join(config.dataDir, 'liveness-unstored-failures.json'),
    });
    registerLivenessRoutes(service, {
      repository: livenessRepository,
      monitor: liveness,
      verifierId: config.verifierId,
      freshnessBound: statusFreshnessBounds(config).liveness,
      clock,
    });
    auditAdminActions(service, access, log);
    if (config.dashboard) {
      registerDashboard(service, { knex: database.knex, access, config, clock });
    }
    push = createPushService({ app: service.app, knex: database.knex, agents, verdictAudit: { key: access.auditKey, actor: owner, alsoStore: recordRevocations }, prepared: database.kind === 'postgres', policies: agentDeps, config, owner, engine, bootLogs: container.resolve(BootLogMemo), log, health, metrics, failures: scheduler.failures, clock });
    await scheduler.start();
    await push.silenceSweep.start();
    revocation.start();
    liveness.start();
    if (config.historyRetentionDays > 0) {
      pruner = new HistoryPruner(database.knex, { retentionDays: config.historyRetentionDays, log });
      pruner.start();
    }
    if (config.auditRetentionDays > 0) {
      auditPruner = new AuditPruner(database.knex, { retentionDays: config.auditRetentionDays, key: access.auditKey, auditLog: access.auditLog, actor: owner, log });
      auditPruner.start();
    }
    const url = inProcess
      ? ''
      : (await service.listen({ host: config.host, port: config.port, ...(options.announce === undefined ? {} : { announce: options.announce }) })).url;
    if (inProcess) {
      await service.app.ready();
    }
    const served = service;
    renewal = new CertificateRenewal({
      dataDir: config.dataDir,
      ...timing,
      certificates: [
        ...(inProcess ? [] : [{ serviceName: 'verifier', type: 'server' as const, sans: config.tlsSans, initial: tls, use: (renewed: ServiceTls) => served.useCertificate(renewed) }]),
        { serviceName: 'verifier-client', type: 'client', initial: startClientTls, use: (renewed) => clientTls.replace(renewed) },
      ],
      log,
    });
    renewal.start();
    const renewing = renewal;
    log.info({ owner, agents: scheduler.size, database: database.kind, verifierId: config.verifierId }, 'verifier ready');
    const running = scheduler;
    const listening = service;
    const pushing = push;
    const checking = liveness;
    const pruning = pruner;
    const auditPruning = auditPruner;
    return {
      url,
      caCert: tls.ca,
      clientTls,
      config,
      databaseKind: database.kind,
      owner,
      service: listening,
      container,
      scheduler: running,
      push: pushing,
      liveness: checking,
      close: async () => {
        await renewing.close();
        await listening.close();
        // Running handlers go on; the writers close first, which ends a sweep waiting on their retries.
        const sweepClosed = pushing.silenceSweep.close();
        await pushing.inserts.close();
        await pushing.verdicts.close();
        await sweepClosed;
        await checking.close();
        await running.close();
        await agentDeps.offThreadJson.close();
        await pruning?.stop();
        await auditPruning?.stop();
        await closeRevocation();
        clock.close();
        await closeDatabase();
      },
    };
  } catch (error) {
    await renewal?.close();
    await service?.close().catch(() => undefined);
    await push?.silenceSweep.close().catch(() => undefined);
    await push?.inserts.close().catch(() => undefined);
    await push?.verdicts.close().catch(() => undefined);
    await scheduler?.close().catch(() => undefined);
    await liveness?.close().catch(() => undefined);
    await pruner?.stop().catch(() => undefined);
    await auditPruner?.stop().catch(() => undefined);
    await closeRevocation().catch(() => undefined);
    clock.close();
    await closeDatabase().catch(() => undefined);
    throw error;
  }
}

/**
 * The verifier's child container: frozen config, logger, database, owner, repositories, policy cache
 * and service — nothing is registered in the parent, so several verifiers in one process stay apart.
 * The caller registers the `PullScheduler` and the `VerifierMetrics`.
 */
export function createVerifierContainer(
  config: Readonly<VerifierConfig>,
  database: Database,
  owner: string,
  log: Logger,
  parent: DependencyContainer = rootContainer,
): DependencyContainer {
  const child = parent.createChildContainer();
  child.register(VERIFIER_CONFIG, { useValue: config });
  child.register(VERIFIER_LOGGER, { useValue: log });
  child.register(DATABASE, { useValue: database });
  child.register(VERIFIER_KNEX, { useValue: database.knex });
  child.register(VERIFIER_OWNER, { useValue: owner });
  child.register(PolicyCache, { useValue: new PolicyCache() });
  child.register(VerifierHealth, { useValue: new VerifierHealth() });
  // Memos the pull loop and push routes hand to the engine (which keeps none): checks and verified boot logs.
  child.register(MeasuredBootMemo, { useValue: new MeasuredBootMemo() });
  child.register(BootLogMemo, { useValue: new BootLogMemo() });
  child.register(VerifierAgentRepository, {
    useFactory: instanceCachingFactory((c) => new VerifierAgentRepository(c.resolve(DATABASE).knex)),
  });
  child.register(VerifierPolicyRepository, {
    useFactory: instanceCachingFactory((c) => new VerifierPolicyRepository(c.resolve(DATABASE).knex)),
  });
  child.register(VerifierService, { useClass: VerifierService }, { lifecycle: Lifecycle.ContainerScoped });
  child.register(PolicyStoreService, { useClass: PolicyStoreService }, { lifecycle: Lifecycle.ContainerScoped });
  return child;
}

/** `<dataDir>/verifier-instance-id`, created with a random id on first start. */
async function loadOrCreateInstanceId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, INSTANCE_ID_FILE);
  const existing = (await readIfExists(file))?.trim();
  if (existing !== undefined && /^[A-Za-z0-9_.:-]{1,128}$/.test(existing)) {
    return existing;
  }
  const id = `verifier-${randomUUID()}`;
  await writeFileAtomic(file, `${id}\n`, 0o600);
  return id;
}
