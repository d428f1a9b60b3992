import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { defaultBootLogPath } from '../agent/node-emulation.js';
import { KeylimeHttpError } from '../http/client-errors.js';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { caDirOf } from '../pki/service-tls.js';
import { loadTenantCertStore } from '../tenant/ek-certificate-check.js';
import { TenantClient } from '../tenant/tenant-client.js';
import { resolveTenantTls } from '../tenant/tenant-tls.js';
import type { FleetTpmKeys } from './fleet-tpm.js';
import { startEmbeddedServices, type EmbeddedServices } from './embedded-services.js';
import { enrolRetryingCutRequests, type EnrolmentRetries } from './enrol-retries.js';
import { FLEET_DIRS, loadOrCreateFleetMaterial, type FleetMaterial } from './fleet-material.js';
import type { FleetNode, FleetNodeSetting } from './fleet-node.js';
import { checkFleetOptions, defaultRegistrarTlsUrl, type FleetOptions } from './fleet-options.js';
import { fleetRefstate, fleetRuntimePolicy, knownGoodCatalog } from './fleet-policies.js';
import { ImaActivity } from './ima-activity.js';
import { forEachLimited } from './limited.js';
import { startSimulatedAgent, type SimulatedAgent } from './simulated-agent.js';
import { startSimulatedPushAgent, type SimulatedPushAgent } from './simulated-push-agent.js';

/** Names under which the fleet stores its policies at the verifier (every agent refers to them). */
export const FLEET_RUNTIME_POLICY = 'ironlime-fleet';
export const FLEET_MB_POLICY = 'ironlime-fleet';

/**
 * `tpm_policy` of every agent: PCR 15 must still hold its reset value (the shipped boot chain never
 * extends it). The tenant adds PCR 10 and the measured-boot PCRs to the mask.
 */
export const FLEET_TPM_POLICY: Readonly<Record<string, readonly string[]>> = { '15': ['00'.repeat(32)] };

/** A running fleet of simulated nodes under attestation: pull agents (`SimulatedAgent`) or push agents. */
export interface RunningFleet<Node extends FleetNode = SimulatedAgent> {
  readonly agents: readonly Node[];
  /** Registrar registration URL the agents used. */
  readonly registrarUrl: string;
  readonly verifierUrl: string;
  /** The tenant the fleet enrolled its agents with (mTLS to registrar and verifier). */
  readonly tenant: TenantClient;
  /** In-process registrar / verifier, when the fleet started them. */
  readonly services: EmbeddedServices | undefined;
  /** Stops IMA growth, deregisters the agents (unless told not to), stops them and the in-process services. */
  close(): Promise<void>;
}

/**
 * Starts `options.agents` simulated pull nodes (see `startSimulatedAgent`) and puts them under
 * attestation as an operator would (see `launchFleet`), each with the tenant's full `add` (registrar
 * record, EK check, identity quote, PCR 16, verifier enrolment referring to the stored policies,
 * `FLEET_TPM_POLICY`).
 */
export function startFleet(options: FleetOptions): Promise<RunningFleet<SimulatedAgent>> {
  return launchFleet(options, {
    start: (setting, material, tpmKeys) =>
      startSimulatedAgent({
        uuid: setting.uuid,
        agentDir: setting.agentDir,
        material,
        registrarUrl: setting.registrarUrl,
        clientCaFile: setting.caFile,
        port: (options.basePort ?? 0) === 0 ? 0 : (options.basePort as number) + setting.index,
        tpmKeys,
        bootLogPath: setting.bootLogPath,
      }),
    enrol: (tenant, node) => enrolRetryingCutRequests(() => tenant.addAgent(node.uuid, FLEET_ENROLMENT), retriesUntil(options.signal)),
  });
}

/**
 * Starts `options.agents` simulated push nodes (see `startSimulatedPushAgent`: no port, they attest to
 * the verifier on their own) and enrols each with the tenant's `add --push` (registrar record, EK
 * check, enrolment with `attestation_mode: "push"` and the same stored policies as a pull fleet).
 */
export async function startPushFleet(options: FleetOptions): Promise<RunningFleet<SimulatedPushAgent>> {
  if ((options.basePort ?? 0) !== 0) {
    throw new InvalidParameterValue('basePort', 'push agents open no port');
  }
  return launchFleet(options, {
    start: (setting, material, tpmKeys) => startSimulatedPushAgent(setting, material, tpmKeys, options.logger ?? pino({ level: 'silent' })),
    enrol: async (tenant, node) => {
      await enrolRetryingCutRequests(() => tenant.addPushAgent(node.uuid, FLEET_ENROLMENT), retriesUntil(options.signal));
      node.enrolled();
    },
  });
}

/** An enrolment's resends (`enrolRetryingCutRequests`), their back-off ended by the fleet's signal. */
function retriesUntil(signal: AbortSignal | undefined): EnrolmentRetries {
  return signal === undefined ? {} : { signal };
}

/** What differs between a pull and a push fleet: how a node starts, how it is enrolled. */
interface FleetKind<Node extends FleetNode> {
  start(setting: FleetNodeSetting, material: FleetMaterial, tpmKeys: FleetTpmKeys): Promise<Node>;
  enrol(tenant: TenantClient, node: Node): Promise<unknown>;
}

/** Every node's policies: the fleet's stored runtime policy and refstate, `FLEET_TPM_POLICY`. */
const FLEET_ENROLMENT = { runtimePolicyName: FLEET_RUNTIME_POLICY, mbPolicyName: FLEET_MB_POLICY, tpmPolicy: FLEET_TPM_POLICY };

/**
 * Starts the nodes and puts them under attestation: a runtime policy made from a known-good node's
 * IMA log and the fleet's known-good files, the refstate of the boot log they all replay, both stored
 * once at the verifier; then each node is enrolled. IMA logs then grow by `imaEntriesPerMinute`
 * known-good entries per node. Missing services are started in-process. Anything started before a
 * failure, or before `options.signal` aborted, is stopped again.
 */
async function launchFleet<Node extends FleetNode>(options: FleetOptions, kind: FleetKind<Node>): Promise<RunningFleet<Node>> {
  checkFleetOptions(options);
  const log = options.logger ?? pino({ level: 'silent' });
  const progress = options.progress ?? ((): void => undefined);
  const ekAlgorithm = options.ekAlgorithm ?? 'ecc';
  const tpmKeys: FleetTpmKeys = { ek: ekAlgorithm, ak: options.akAlgorithm ?? ekAlgorithm };
  const fleetDir = path.resolve(options.dataDir, 'fleet');
  const material = await loadOrCreateFleetMaterial(fleetDir);
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => log.warn({ err: error }, 'fleet shutdown step failed'));
    }
  };
  try {
    let services: EmbeddedServices | undefined;
    if (options.registrarUrl === undefined || options.verifierUrl === undefined) {
      services = await startEmbeddedServices({
        dataDir: options.dataDir,
        registrar: options.registrarUrl === undefined,
        verifier: options.verifierUrl === undefined,
        ekCheck: ekAlgorithm === 'ecc' ? 'off' : 'require',
        ekCaDirs: [material.ekCaDir],
        verifierConfig: { ...options.verifierConfig, quoteInterval: options.quoteInterval ?? 2 },
        logger: log,
        ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
        ...(options.databaseSchema === undefined ? {} : { searchPath: options.databaseSchema }),
      });
      const started = services;
      cleanups.push(() => started.close());
      progress(`in-process services on ${services.databaseKind}: ${[services.registrar?.httpUrl, services.registrar?.tlsUrl, services.verifier?.url].filter(Boolean).join(', ')}`);
    }
    const registrarUrl = options.registrarUrl ?? (services?.registrar?.httpUrl as string);
    const registrarTlsUrl = options.registrarTlsUrl ?? services?.registrar?.tlsUrl ?? defaultRegistrarTlsUrl(registrarUrl);
    const verifierUrl = options.verifierUrl ?? (services?.verifier?.url as string);
    const tenant = new TenantClient({
      registrarUrl: registrarTlsUrl,
      verifierUrl,
      tls: await resolveTenantTls({ dataDir: options.dataDir }),
      // ECC software EKs carry no certificate (node-forge has no EC keys); RSA ones chain to the fleet's EK CA.
      ekCheck: ekAlgorithm === 'ecc' ? 'off' : 'require',
      // Loaded once: left to the tenant, every addAgent would parse the vendor store again.
      certStore: loadTenantCertStore([material.ekCaDir]),
    });
    cleanups.push(async () => tenant.close());

    const agents: Node[] = [];
    const enrolled: string[] = [];
    const activity = new ImaActivity({
      catalog: knownGoodCatalog(),
      entriesPerMinute: options.imaEntriesPerMinute ?? 3,
      onError: (error) => log.warn({ err: error }, 'a simulated node could not run a file'),
    });
    const agentsDir = path.join(fleetDir, FLEET_DIRS.agents);
    cleanups.push(() => rm(agentsDir, { recursive: true, force: true }));
    cleanups.push(() =>
      forEachLimited(agents, 32, (agent) => agent.close().catch((error: unknown) => log.warn({ err: error, agentId: agent.uuid }, 'could not stop a simulated agent'))),
    );
    cleanups.push(async () => {
      if (options.deregisterOnClose !== false) {
        await deregister(tenant, enrolled, log);
      }
    });
    cleanups.push(() => activity.stop());

    const caFile = path.join(caDirOf(options.dataDir), CA_CERT_FILE);
    const startOne = async (index: number): Promise<Node> => {
      options.signal?.throwIfAborted();
      const setting = { uuid: randomUUID(), agentDir: path.join(agentsDir, String(index)), index, registrarUrl, verifierUrl, caFile, bootLogPath: defaultBootLogPath() };
      const agent = await kind.start(setting, material, tpmKeys);
      agents.push(agent);
      return agent;
    };
    const first = await startOne(0);
    await storePolicies(tenant, await first.bootAggregateLine());
    let done = 0;
    await forEachLimited(
      Array.from({ length: options.agents }, (_, i) => i),
      options.startConcurrency ?? 8,
      async (index) => {
        // A started node is enrolled even after an abort: the teardown deregisters enrolled nodes only.
        const agent = index === 0 ? first : await startOne(index);
        await kind.enrol(tenant, agent);
        enrolled.push(agent.uuid);
        activity.add(agent);
        done += 1;
        options.enrolled?.(done, options.agents);
        if (done === options.agents || done % Math.max(1, Math.round(options.agents / 10)) === 0) {
          progress(`${done}/${options.agents} agents registered and enrolled`);
        }
      },
    );
    options.signal?.throwIfAborted();
    activity.start();
    return { agents, registrarUrl, verifierUrl, tenant, services, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** Stores (or replaces) the fleet's runtime policy and refstate at the verifier. */
async function storePolicies(tenant: TenantClient, bootAggregateLine: string): Promise<void> {
  const runtime = JSON.stringify(fleetRuntimePolicy(bootAggregateLine, knownGoodCatalog()));
  const refstate = JSON.stringify(fleetRefstate(new Uint8Array(await readFile(defaultBootLogPath()))));
  await addOrReplace(
    () => tenant.addRuntimePolicy(FLEET_RUNTIME_POLICY, runtime),
    () => tenant.addRuntimePolicy(FLEET_RUNTIME_POLICY, runtime, { update: true }),
  );
  await addOrReplace(
    () => tenant.addMbPolicy(FLEET_MB_POLICY, refstate),
    () => tenant.addMbPolicy(FLEET_MB_POLICY, refstate, { update: true }),
  );
}

async function addOrReplace(add: () => Promise<void>, replace: () => Promise<void>): Promise<void> {
  try {
    await add();
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 409) {
      await replace();
      return;
    }
    throw error;
  }
}

/**
 * Removes the agents from the verifier (waiting for each to be gone) and from the registrar. Each
 * step is tried twice, and the registrar record is removed even when the verifier step failed: a
 * simulated node left registered would only make its EK count against a later fleet. Failures are
 * logged with the step that failed.
 */
async function deregister(tenant: TenantClient, agentIds: readonly string[], log: Logger): Promise<void> {
  await forEachLimited(agentIds, 32, async (agentId) => {
    await tryTwice(log, agentId, 'verifier', () => tenant.deleteAgent(agentId, { timeoutMs: 30_000, intervalMs: 100 }));
    await tryTwice(log, agentId, 'registrar', () => tenant.registrar.delete(agentId));
  });
}

const DEREGISTER_RETRY_MS = 500;

/** Runs one deregistration step, once more after a failure; a 404 on the second try means the first had done it. */
async function tryTwice(log: Logger, agentId: string, step: string, action: () => Promise<void>): Promise<void> {
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    try {
      await action();
      return;
    } catch (error) {
      if (attempt === 2 && error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) return;
      log.warn({ err: error, agentId, step, attempt }, 'could not deregister a simulated agent');
      if (attempt === 1) await sleep(DEREGISTER_RETRY_MS);
    }
  }
}
