// tsyringe and decorator metadata (class-validator) need the Reflect polyfill loaded first.
import 'reflect-metadata';
import { inject, injectable } from 'tsyringe';
import type { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { AttestationFailed, AttestationServiceUnavailable, InvalidParameterValue, MissingParameterValue, TrustLevelTooLow } from '../../interfaces/errors.js';
import type { AttestationStatus } from '../../interfaces/node.js';
import type { IronlimeSettings } from '../../interfaces/settings.js';
import type { Task } from '../../interfaces/task.js';
import { NoAttestation } from '../../drivers/no-attestation/no-attestation.js';
import { IRONLIME_CONFIG } from '../config/config-token.js';
import { decideTrustGate, type GatedStep } from '../identity/trust-gate.js';
import { isTrustLevel, TRUST_LEVELS, type TrustLevel } from '../identity/trust-level.js';
import { DriverRegistry } from './driver-registry.js';
import { MINIMUM_TRUST_LEVEL_FIELD, NodeStore } from './node-store.js';

/** The points of the orchestrator's state machine where it calls a hook. */
export type AttestationStage = 'clean-start' | 'clean-end' | 'deploy-start' | 'deploy-end';

/** What a clean or deploy hook found. */
export interface AttestationOutcome {
  readonly stage: AttestationStage;
  readonly interfaceName: string;
  readonly status: AttestationStatus;
  readonly reasons: readonly string[];
  readonly eventIds: readonly string[];
  /** False only for `no-attestation`, which makes no trust claim and so writes nothing. */
  readonly recorded: boolean;
  /** The node's trust level, when the stage read it: a start hook, or an end hook that found none stored for the node's agent. */
  readonly trustLevel?: TrustLevel;
}

/**
 * The one object an orchestrator calls during provisioning. Each hook resolves the node's driver,
 * runs `validate`, then:
 *
 * | hook | driver operations |
 * |---|---|
 * | `onCleanStart`, `onDeployStart` | `startAttestation`, then `validateSecurityStatus` |
 * | `onCleanEnd`, `onDeployEnd` | `validateSecurityStatus` |
 * | `onTeardown` | `unregisterNode` |
 *
 * A clean/deploy outcome is written to the node row (`NodeStore.recordAttestation`). A failure —
 * `AttestationFailed`, `AttestationServiceUnavailable`, or any unexpected error (fail closed) — makes
 * the hook throw `AttestationFailed` when the stage's flag (`keylime.failCleanOnAttestationFailure`
 * / `failDeployOnAttestationFailure`) is true; when false it is logged and the outcome returned.
 * Configuration errors (unknown or disabled interface, bad `driver_info`) always throw, before any
 * operation runs, and are not recorded; so does an `InvalidParameterValue` or `MissingParameterValue` a
 * driver operation throws (a `driver_info` document that is malformed or fails its checksum, no agent
 * located yet), whatever the fail flags. An abort of `task.signal` rethrows its reason unrecorded.
 *
 * The start hooks first gate the node by its trust level (docs/identity.md): the driver's
 * `trustLevel` is stored on the node and compared with the step's minimum (`driver_info
 * .keylime_minimum_trust_level`, else an operator's `NodeStore.acceptTrustLevel`, else
 * `attestation.minimumTrustLevel`, else clean `id-only` / deploy `hardware-tpm`). A node below it is
 * recorded as failed and the hook throws `TrustLevelTooLow` when the stage's fail flag is set,
 * before anything is enrolled; with the flag off it is logged and attestation goes on, and the
 * outcome (returned and stored) of that start hook and of the step's end hook, which judges the level
 * the start stored, is `failed` with the gate's reason first, whatever the attestation found.
 */
@injectable()
export class AttestationHooks {
  constructor(
    @inject(DriverRegistry) private readonly registry: DriverRegistry,
    @inject(NodeStore) private readonly nodes: NodeStore,
    @inject(IRONLIME_CONFIG) private readonly config: IronlimeSettings,
  ) {}

  /** @throws AttestationFailed when attestation fails and `failCleanOnAttestationFailure` is true. */
  onCleanStart(task: Task): Promise<AttestationOutcome> {
    return this.#attest(task, 'clean-start', true);
  }

  /** @throws AttestationFailed when attestation fails and `failCleanOnAttestationFailure` is true. */
  onCleanEnd(task: Task): Promise<AttestationOutcome> {
    return this.#attest(task, 'clean-end', false);
  }

  /** @throws AttestationFailed when attestation fails and `failDeployOnAttestationFailure` is true. */
  onDeployStart(task: Task): Promise<AttestationOutcome> {
    return this.#attest(task, 'deploy-start', true);
  }

  /** @throws AttestationFailed when attestation fails and `failDeployOnAttestationFailure` is true. */
  onDeployEnd(task: Task): Promise<AttestationOutcome> {
    return this.#attest(task, 'deploy-end', false);
  }

  /**
   * Unregisters the node from the attestation service when it leaves service (undeploy, delete).
   * Nothing is recorded: the last verdict stays as history.
   *
   * @throws AttestationServiceUnavailable (or the driver's error) when unregistering fails.
   */
  async onTeardown(task: Task): Promise<void> {
    const driver = this.#driverFor(task);
    await driver.unregisterNode(task);
  }

  #driverFor(task: Task): AttestationInterface {
    const driver = this.registry.interfaceFor(task.node);
    driver.validate(task);
    return driver;
  }

  async #attest(task: Task, stage: AttestationStage, start: boolean): Promise<AttestationOutcome> {
    const interfaceName = this.registry.interfaceNameFor(task.node);
    const driver = this.#driverFor(task);
    const gated = !(driver instanceof NoAttestation);
    const nodeMinimum = gated ? nodeMinimumOf(task) : undefined;
    const failStep = stage.startsWith('clean') ? this.config.keylime.failCleanOnAttestationFailure : this.config.keylime.failDeployOnAttestationFailure;
    let verdict: Verdict;
    let trustLevel: TrustLevel | undefined;
    let belowMinimum: string | undefined;
    try {
      const stored = gated && !start ? await this.#storedLevel(task) : null;
      if (stored !== null) {
        belowMinimum = this.#storedLevelBelowMinimum(stage, stored, nodeMinimum);
      } else if (gated) {
        // A start hook, or an end hook with no level to judge (its start's read failed, or the node now
        // names another agent): read it, as a start does; a gate skipped here would record a pass.
        trustLevel = driver.trustLevel === undefined ? 'id-only' : await driver.trustLevel(task);
        belowMinimum = await this.#gate(task, stage, trustLevel, nodeMinimum, failStep);
      }
      if (start) {
        await driver.startAttestation(task);
      }
      await driver.validateSecurityStatus(task);
      verdict = { status: 'passed', reasons: [], eventIds: [] };
    } catch (error) {
      // A driver_info document the driver refuses (e.g. an allowlist failing its checksum), or a field
      // still missing when it is read (no agent located yet), is a configuration error, as Ironic's
      // start_attestation raises it: never an outcome to go on from, nor an "unexpected error".
      if (
        (task.signal.aborted && error === task.signal.reason) ||
        error instanceof TrustLevelTooLow ||
        error instanceof InvalidParameterValue ||
        error instanceof MissingParameterValue
      ) {
        throw error;
      }
      verdict = classify(error);
    }
    if (belowMinimum !== undefined) {
      // The fail flag is off, so attestation went on; its result must not overwrite the gate's refusal.
      verdict = { ...verdict, status: 'failed', reasons: [belowMinimum, ...verdict.reasons] };
    }
    const base = { stage, interfaceName, ...verdict, ...(trustLevel === undefined ? {} : { trustLevel }) };
    if (driver instanceof NoAttestation) {
      return { ...base, recorded: false };
    }
    await this.nodes.recordAttestation(task.node.uuid, {
      status: verdict.status,
      reason: verdict.reasons.length > 0 ? verdict.reasons.join('; ') : null,
      eventIds: verdict.eventIds,
    });
    const outcome = { ...base, recorded: true };
    const context = { node: task.node.uuid, stage, interface: interfaceName, status: verdict.status };
    if (verdict.status === 'passed') {
      task.logger.info(context, 'attestation passed');
      return outcome;
    }
    const details = { ...context, reasons: verdict.reasons, eventIds: verdict.eventIds };
    if (failStep) {
      task.logger.error(details, `attestation ${verdict.status}; failing the ${stage.split('-')[0]} step`);
      throw new AttestationFailed(verdict.reasons, verdict.eventIds, { cause: verdict.cause });
    }
    task.logger.warn(details, `attestation ${verdict.status}; continuing because the fail flag is off`);
    return outcome;
  }

  /**
   * Stores the node's level and applies the gate. A refusal is recorded on the node; it throws
   * `TrustLevelTooLow` under the fail flag, else it is logged, attestation goes on, and the refusal's
   * reason is returned for the stage's verdict (undefined when the node passes the gate).
   */
  async #gate(task: Task, stage: AttestationStage, level: TrustLevel, nodeMinimum: TrustLevel | undefined, failStep: boolean): Promise<string | undefined> {
    const step = stepOf(stage);
    if (!(await this.nodes.recordTrustLevel(task.node, level))) {
      // The end hook, finding no level stored, reads the level of the agent the node names now.
      task.logger.warn({ node: task.node.uuid, stage, trustLevel: level }, 'trust level not stored: the node was pointed at another agent while it was read');
    }
    const decision = decideTrustGate({ step, nodeLevel: level, configuredMinimum: this.config.attestation.minimumTrustLevel[step], nodeMinimum });
    if (decision.allowed) return undefined;
    const context = { node: task.node.uuid, stage, trustLevel: level, minimum: decision.minimum, source: decision.source };
    await this.nodes.recordAttestation(task.node.uuid, { status: 'failed', reason: decision.reason, eventIds: [] });
    if (failStep) {
      task.logger.error(context, `trust level too low; failing the ${step} step`);
      throw new TrustLevelTooLow(step, level, decision.minimum, `${decision.reason} (${minimumHint(step, level, decision.source)})`);
    }
    task.logger.warn(context, `trust level too low (${decision.reason}); continuing because the fail flag is off`);
    return decision.reason;
  }

  /** The level a start hook stored for the node's current agent (`NodeStore.updateNode` clears it when the node names another), or null. */
  async #storedLevel(task: Task): Promise<TrustLevel | null> {
    return (await this.nodes.getNode(task.node.uuid)).trust?.level ?? null;
  }

  /**
   * An end hook judges the level its start hook stored rather than asking again, so a node its start
   * let through below the minimum (fail flag off) is not recorded as passed at the end of the step.
   * Undefined when the node passes.
   */
  #storedLevelBelowMinimum(stage: AttestationStage, level: TrustLevel, nodeMinimum: TrustLevel | undefined): string | undefined {
    const step = stepOf(stage);
    const decision = decideTrustGate({ step, nodeLevel: level, configuredMinimum: this.config.attestation.minimumTrustLevel[step], nodeMinimum });
    return decision.allowed ? undefined : decision.reason;
  }
}

/** Where a refused step's minimum came from and how an operator accepts the node's level, for the error a new operator reads. */
function minimumHint(step: GatedStep, level: TrustLevel, source: 'node' | 'config' | 'default'): string {
  const from = {
    node: "this node's own minimum (driver_info.keylime_minimum_trust_level, else the level an operator accepted)",
    config: `the configured attestation.minimumTrustLevel.${step}`,
    default: `the default minimum for ${step} (attestation.minimumTrustLevel.${step})`,
  }[source];
  return (
    `minimum from ${from}; to go on at ${level}, an operator accepts it: driver_info.keylime_minimum_trust_level ${level} (wins over any other minimum), ` +
    `or NodeStore.acceptTrustLevel(uuid, '${level}', note) when driver_info sets none; see docs/identity.md`
  );
}

/** The step a stage belongs to. */
function stepOf(stage: AttestationStage): GatedStep {
  return stage.startsWith('clean') ? 'clean' : 'deploy';
}

/**
 * The node's own minimum: `driver_info.keylime_minimum_trust_level`, else the level an operator
 * accepted. @throws InvalidParameterValue for a `driver_info` value that is not a trust level.
 */
function nodeMinimumOf(task: Task): TrustLevel | undefined {
  const value = task.node.driverInfo[MINIMUM_TRUST_LEVEL_FIELD];
  if (value === undefined || value === null || value === '') return task.node.trust?.accepted?.level;
  if (!isTrustLevel(value)) throw new InvalidParameterValue(`driver_info.${MINIMUM_TRUST_LEVEL_FIELD}`, `must be one of ${TRUST_LEVELS.join(', ')}`);
  return value;
}

interface Verdict {
  readonly status: AttestationStatus;
  readonly reasons: readonly string[];
  readonly eventIds: readonly string[];
  readonly cause?: unknown;
}

/** Maps what a driver threw to a verdict; anything unforeseen is `unavailable` (fail closed). */
function classify(error: unknown): Verdict {
  if (error instanceof AttestationFailed) {
    return { status: 'failed', reasons: error.reasons, eventIds: error.eventIds, cause: error };
  }
  if (error instanceof AttestationServiceUnavailable) {
    return { status: 'unavailable', reasons: [error.message], eventIds: [], cause: error };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { status: 'unavailable', reasons: [`unexpected error from the attestation driver: ${message}`], eventIds: [], cause: error };
}
