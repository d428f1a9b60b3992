// A reference provisioning orchestrator: what a bare-metal service (Ironic, Metal3, a home-grown tool)
// does with ironlime. Exported from the package root, run by examples/orchestrator.ts and by the demo.
import type { AgentLocation } from '../../drivers/keylime/agent-locator.js';
import { KeylimeAttestation, type KeylimeAttestationOptions } from '../../drivers/keylime/keylime-attestation.js';
import { AttestationFailed, IronlimeError } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { IronlimeSettings } from '../../interfaces/settings.js';
import type { Task, TaskLogger } from '../../interfaces/task.js';
import type { Database } from '../db/database-factory.js';
import { migrateLatest } from '../db/migrate.js';
import { AttestationHooks, type AttestationOutcome } from './attestation-hooks.js';
import { createTask, SILENT_LOGGER } from './create-task.js';
import { type AttestationInterfaceFactory, DriverRegistry } from './driver-registry.js';
import { type NewNode, NodeStore } from './node-store.js';
import { createProvisioningContainer } from './provisioning-container.js';
import type { NodeSecretRelease, SecretDeployStart } from './node-secret-release.js';
import { messageOf } from '../verifier/error-message.js';

/** One provision-state change, as the orchestrator reports it. */
export interface Transition {
  readonly node: Node;
  readonly from: string;
  readonly to: string;
  /** Why: the attestation verdict, or the error that failed the step. */
  readonly detail: string | undefined;
}

export interface ExampleOrchestratorOptions {
  /** The frozen ironlime configuration (`loadConfig` / `buildConfig`). */
  readonly config: IronlimeSettings;
  /** An open database; the node table is migrated by `create`. */
  readonly database: Database;
  /** Drivers to add or replace. */
  readonly attestationInterfaces?: Readonly<Record<string, AttestationInterfaceFactory>>;
  /** Options of the keylime driver this orchestrator builds (trusted EK CAs, timeouts). */
  readonly keylime?: Omit<KeylimeAttestationOptions, 'nodes' | 'agentLocator'>;
  readonly logger?: TaskLogger;
  /** Called after every provision-state change. */
  readonly onTransition?: (transition: Transition) => void;
  /** Per-node secrets in a KBS broker: released after a passing deploy, withdrawn after a failed one. */
  readonly nodeSecrets?: NodeSecretRelease;
  /** Longest a clean or deploy step may take before it is aborted (default 10 minutes). */
  readonly stepTimeoutMs?: number;
}

/** Ironic's provision states used here. */
export const STATES = {
  enroll: 'enroll',
  manageable: 'manageable',
  cleaning: 'cleaning',
  cleanFailed: 'clean failed',
  available: 'available',
  deploying: 'deploying',
  deployFailed: 'deploy failed',
  active: 'active',
  deleting: 'deleting',
} as const;

/**
 * A small orchestrator with Ironic's state machine: nodes are enrolled (`enroll` → `manageable` once
 * their interfaces validate), cleaned (`cleaning` → `available`, or `clean failed`), deployed
 * (`deploying` → `active`, or `deploy failed`; an active node can be deployed again, as Ironic's
 * rebuild) and torn down (`deleting` → `manageable`). At the start and end of cleaning and deployment
 * it calls ironlime's hooks, which attest the node and — with the fail flags on — fail the step when
 * the node is untrusted. Nodes live in ironlime's node store. One clean, deploy or teardown runs on a
 * node at a time; another asked meanwhile is refused with `NodeBusy` (Ironic's node lock).
 *
 * The ramdisk's report of its Keylime agent (`reportAgent`) is kept until the keylime driver asks
 * for it through its `agentLocator` hook at the start of attestation; the driver then stores it in the
 * node's `driver_info` (so nodes can be enrolled before their agent is known, as in Ironic).
 */
export class ExampleOrchestrator {
  private readonly reports = new Map<string, AgentLocation>();
  /** The clean, deploy or teardown each node is in (Ironic's node reservation): one at a time per node. */
  private readonly busy = new Map<string, string>();

  private constructor(
    private readonly options: ExampleOrchestratorOptions,
    readonly nodes: NodeStore,
    private readonly hooks: AttestationHooks,
    private readonly registry: DriverRegistry,
  ) {}

  /** Migrates the node table and wires ironlime's provisioning container. */
  static async create(options: ExampleOrchestratorOptions): Promise<ExampleOrchestrator> {
    await migrateLatest(options.database.knex);
    let orchestrator: ExampleOrchestrator | undefined;
    const container = createProvisioningContainer({
      config: options.config,
      database: options.database,
      attestationInterfaces: {
        // Built on first use, after `orchestrator` is set below.
        keylime: (c) =>
          new KeylimeAttestation({
            ...options.keylime,
            nodes: c.resolve(NodeStore),
            agentLocator: async (task) => orchestrator?.reports.get(task.node.uuid),
          }),
        ...options.attestationInterfaces,
      },
    });
    orchestrator = new ExampleOrchestrator(options, container.resolve(NodeStore), container.resolve(AttestationHooks), container.resolve(DriverRegistry));
    return orchestrator;
  }

  /** Enrols a node and makes it manageable once its attestation interface accepts its `driver_info`. */
  async enrollNode(input: NewNode): Promise<Node> {
    const node = await this.nodes.createNode({ ...input, provisionState: STATES.enroll });
    this.report(node, 'none', STATES.enroll, undefined);
    this.registry.interfaceFor(node).validate(this.task(node));
    return this.move(node, STATES.manageable, 'driver_info validated');
  }

  /**
   * The ramdisk's lookup call: it booted on the node and reports its Keylime agent. Kept for the
   * keylime driver's locator, which stores it in `driver_info` when attestation starts. With
   * `store: true` it is stored at once instead (`KeylimeAttestation.locateAgent`), and refused while a
   * clean, deploy or teardown runs on the node: stored then, it re-pointed the node between the step's
   * hooks, or between its passing deploy and the secret's release to the agent `driver_info` names.
   * @throws NodeBusy
   */
  async reportAgent(uuid: string, location: AgentLocation, options: { store?: boolean } = {}): Promise<Node> {
    const running = this.busy.get(uuid);
    if (options.store === true && running !== undefined) throw new NodeBusy(uuid, running, 'agent report');
    const node = await this.nodes.getNode(uuid);
    this.reports.set(uuid, location);
    const driver = this.registry.interfaceFor(node);
    return options.store === true && driver instanceof KeylimeAttestation ? driver.locateAgent(this.task(node), location) : node;
  }

  /** Cleans a manageable or available node; resolves to the node in `available` or `clean failed`. */
  async clean(uuid: string): Promise<Node> {
    return this.exclusive(uuid, 'clean', () => this.cleanStep(uuid));
  }

  private cleanStep(uuid: string): Promise<Node> {
    return this.step(uuid, [STATES.manageable, STATES.available, STATES.cleanFailed], STATES.cleaning, STATES.available, STATES.cleanFailed, {
      start: (task) => this.hooks.onCleanStart(task),
      end: (task) => this.hooks.onCleanEnd(task),
    });
  }

  /**
   * Deploys an available (or active: rebuild) node; resolves to the node in `active` or `deploy failed`.
   * With `nodeSecrets`, a node whose deploy attestation passed gets a fresh secret in the broker; any
   * other (failed step, or an attestation that failed but was recorded only: fail flag off) loses it.
   */
  async deploy(uuid: string): Promise<Node> {
    return this.exclusive(uuid, 'deploy', () => this.deployStep(uuid));
  }

  private async deployStep(uuid: string): Promise<Node> {
    const secrets = this.options.nodeSecrets;
    let secretStart: SecretDeployStart | undefined;
    /** The node as the deploy found it once it was `deploying`: from then on a secret may have to go. */
    let deploying: Node | undefined;
    const outcomes: AttestationOutcome[] = [];
    let node: Node;
    try {
      node = await this.step(uuid, [STATES.available, STATES.active, STATES.deployFailed], STATES.deploying, STATES.active, STATES.deployFailed, {
        start: async (task) => {
          deploying = task.node;
          // Before the attestation: the revocation in force now is the only one the release may end.
          secretStart = await secrets?.begin(task.node);
          return record(outcomes, await this.hooks.onDeployStart(task));
        },
        end: async (task) => record(outcomes, await this.hooks.onDeployEnd(task)),
      });
    } catch (error) {
      // An unexpected error (a database fault recording the verdict) ends the deploy too: a rebuild's
      // earlier secret must not outlive it, or the node keeps a secret its failed deploy should have cost it.
      if (secrets === undefined || deploying === undefined) throw error;
      throw await this.withdrawAfterError(secrets, deploying, error);
    }
    if (secrets === undefined) {
      return node;
    }
    // By the attestation's result, not the state: with the fail flag off a failed attestation still ends `active`.
    if (node.provisionState !== STATES.active || !attestationPassed(outcomes)) {
      await secrets.withdraw(node, 'deploy failed attestation');
      // An active node left without its secret is said so: its transition read like a good deploy.
      if (node.provisionState === STATES.active) {
        this.report(node, STATES.active, STATES.active, `secret withdrawn: the deploy attestation did not pass (${shortfall(outcomes)})`);
      }
      return node;
    }
    try {
      if (secretStart === undefined) {
        throw new Error('the deploy began without reading the broker');
      }
      const path = await secrets.release(node, secretStart);
      this.report(node, STATES.active, STATES.active, `secret released at kbs:///${path.repository}/${path.type}/${path.tag}`);
      return node;
    } catch (error) {
      // Fail closed: a node whose secret could not be stored is not deployed, and whatever part of the
      // release went through (a rebuild's node record, its new secret) is withdrawn, as for a failed deploy.
      const withdrawn = await secrets.withdraw(node, 'deploy failed: secret not released').then(
        () => undefined,
        (withdrawError: unknown) => withdrawError,
      );
      const detail = `secret not released: ${messageOf(error)}${withdrawn === undefined ? '' : `; withdrawing failed: ${messageOf(withdrawn)}`}`;
      let failed: Node;
      try {
        failed = await this.move(node, STATES.deployFailed, detail);
      } catch (moveError) {
        // The node stays `active` in the store: the caller must learn that its secret may still be out too.
        if (withdrawn === undefined) throw moveError;
        throw new AggregateError([withdrawn, moveError], `${detail}; moving the node to ${STATES.deployFailed} failed too: ${messageOf(moveError)}`, { cause: withdrawn });
      }
      if (withdrawn !== undefined) throw withdrawn;
      return failed;
    }
  }

  /**
   * Takes a node out of service: with `nodeSecrets` its secret is withdrawn first (the node leaves, so
   * must what it was given), then the attestation service forgets it, and it goes back to `manageable`.
   * A withdrawal that fails leaves the node `deleting`; tear it down again.
   */
  async tearDown(uuid: string): Promise<Node> {
    return this.exclusive(uuid, 'teardown', () => this.tearDownStep(uuid));
  }

  private async tearDownStep(uuid: string): Promise<Node> {
    const node = await this.move(await this.nodes.getNode(uuid), STATES.deleting, undefined);
    await this.options.nodeSecrets?.withdraw(node, 'node torn down');
    await this.hooks.onTeardown(this.task(node));
    return this.move(node, STATES.manageable, 'unregistered from the attestation service');
  }

  /**
   * Runs `operation` on the node unless another one runs on it in this orchestrator: a teardown during a
   * deploy left the node `active` with a fresh secret after its teardown had withdrawn it and
   * unregistered the node. A process that dies mid-step holds nothing after it.
   * @throws NodeBusy
   */
  private async exclusive<T>(uuid: string, operation: string, run: () => Promise<T>): Promise<T> {
    const current = this.busy.get(uuid);
    if (current !== undefined) throw new NodeBusy(uuid, current, operation);
    this.busy.set(uuid, operation);
    try {
      return await run();
    } finally {
      this.busy.delete(uuid);
    }
  }

  private async step(
    uuid: string,
    from: readonly string[],
    during: string,
    done: string,
    failed: string,
    hooks: { start(task: Task): Promise<AttestationOutcome>; end(task: Task): Promise<AttestationOutcome> },
  ): Promise<Node> {
    let node = await this.nodes.getNode(uuid);
    if (!from.includes(node.provisionState)) {
      throw new Error(`node ${node.name ?? uuid} is ${node.provisionState}; expected one of ${from.join(', ')}`);
    }
    node = await this.move(node, during, undefined);
    const signal = AbortSignal.timeout(this.options.stepTimeoutMs ?? 600_000);
    try {
      const started = await hooks.start(this.task(node, signal));
      // The orchestrator's own work (erasing disks, writing the image) would run here.
      const ended = await hooks.end(this.task(await this.nodes.getNode(uuid), signal));
      return await this.move(await this.nodes.getNode(uuid), done, describe(started, ended));
    } catch (error) {
      const detail = error instanceof AttestationFailed ? error.reasons.join('; ') : error instanceof Error ? error.message : String(error);
      const moved = await this.move(await this.nodes.getNode(uuid), failed, detail);
      // Refusals (untrusted node, bad driver_info, unreachable service) and the step timeout are
      // outcomes; anything else is a bug worth a stack trace.
      if (!(error instanceof IronlimeError) && !(error instanceof Error && error.name === 'TimeoutError')) {
        throw error;
      }
      return moved;
    }
  }

  /**
   * Withdraws the secret of a node whose deploy ended in `error`, best effort, and resolves the error
   * to throw: `error` itself, or, when the withdrawal failed too, an `AggregateError` of both (the
   * original first and as its cause), so neither hides the other.
   */
  private async withdrawAfterError(secrets: NodeSecretRelease, began: Node, error: unknown): Promise<unknown> {
    // The stored node names the agent the driver may have located during the step; the database may be what failed.
    const node = await this.nodes.getNode(began.uuid).catch(() => began);
    try {
      await secrets.withdraw(node, `deploy failed: ${messageOf(error)}`);
      return error;
    } catch (withdrawError) {
      return new AggregateError([error, withdrawError], `${messageOf(error)}; withdrawing the node's secret failed too: ${messageOf(withdrawError)}`, { cause: error });
    }
  }

  private task(node: Node, signal?: AbortSignal): Task {
    return createTask(node, this.options.config, { logger: this.options.logger ?? SILENT_LOGGER, ...(signal === undefined ? {} : { signal }) });
  }

  private async move(node: Node, to: string, detail: string | undefined): Promise<Node> {
    const updated = await this.nodes.updateNode(node.uuid, { provisionState: to });
    this.report(updated, node.provisionState, to, detail);
    return updated;
  }

  private report(node: Node, from: string, to: string, detail: string | undefined): void {
    this.options.onTransition?.({ node, from, to, detail });
  }
}

/** Another clean, deploy or teardown of the node runs in this orchestrator (Ironic's NodeLocked, 409). */
export class NodeBusy extends IronlimeError {
  constructor(uuid: string, running: string, refused: string) {
    super('ERR_CONFLICT', `node ${uuid} is busy with a ${running}: the ${refused} is refused; try again once it ends`);
  }
}

function record(outcomes: AttestationOutcome[], outcome: AttestationOutcome): AttestationOutcome {
  outcomes.push(outcome);
  return outcome;
}

/** True when both hooks ran and attested the node (`no-attestation` attests nothing, so it never passes). */
function attestationPassed(outcomes: readonly AttestationOutcome[]): boolean {
  return outcomes.length === 2 && outcomes.every((outcome) => outcome.recorded && outcome.status === 'passed');
}

/** The first hook's result that was not a pass: its status, `not attested` (no-attestation), or `not run`. */
function shortfall(outcomes: readonly AttestationOutcome[]): string {
  const missed = outcomes.find((outcome) => !outcome.recorded || outcome.status !== 'passed');
  if (missed === undefined) return 'not run';
  return missed.recorded ? missed.status : 'not attested';
}

/** One line on what the two hooks found. */
function describe(started: AttestationOutcome, ended: AttestationOutcome): string {
  if (!started.recorded) {
    return `not attested (${started.interfaceName})`;
  }
  const bad = [started, ended].find((outcome) => outcome.status !== 'passed');
  if (bad === undefined) {
    return `attestation passed (${started.interfaceName})`;
  }
  return `attestation ${bad.status}, recorded only (fail flag off): ${bad.reasons.join('; ')}`;
}
