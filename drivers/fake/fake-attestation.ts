import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { mergeProperties, readOptionalChoice, readOptionalInteger } from '../../interfaces/driver-info.js';
import { AttestationFailed, AttestationServiceUnavailable } from '../../interfaces/errors.js';
import type { Task } from '../../interfaces/task.js';
import { TRUST_LEVELS, type TrustLevel } from '../../lib/identity/trust-level.js';
import { abortableDelay } from '../../lib/timing/abortable-delay.js';

export const REQUIRED_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({});
export const OPTIONAL_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({
  fake_outcome:
    'Outcome when no script is set for the node through FakeAttestation.script(): pass, fail or unavailable. Defaults to pass. Optional.',
  fake_delay_ms: 'Milliseconds every operation waits before answering (0 to 600000). Defaults to 0. Optional.',
  fake_trust_level: 'Trust level the fake reports for the node: hardware-tpm, emulated-tpm, id-secret or id-only. Defaults to hardware-tpm. Optional.',
});

/** The operations of the attestation interface that talk to a service. */
export type FakeOperation = 'startAttestation' | 'validateSecurityStatus' | 'unregisterNode';

/**
 * What the fake answers for one node. `pass`: every operation succeeds. `fail`: the node is untrusted
 * — `validateSecurityStatus` rejects with `AttestationFailed(reasons, eventIds)`, the other operations
 * succeed. `unavailable`: every operation rejects with `AttestationServiceUnavailable`.
 * `delayMs` delays every operation; aborting the task's signal cuts the wait short.
 */
export type FakeScript =
  | { readonly outcome: 'pass'; readonly delayMs?: number }
  | { readonly outcome: 'fail'; readonly reasons: readonly string[]; readonly eventIds?: readonly string[]; readonly delayMs?: number }
  | { readonly outcome: 'unavailable'; readonly detail?: string; readonly delayMs?: number };

/** One call the fake received, for assertions in the orchestrator's tests. */
export interface FakeCall {
  readonly operation: FakeOperation | 'validate';
  readonly nodeUuid: string;
}

const OUTCOMES = ['pass', 'fail', 'unavailable'] as const;

/**
 * A scriptable attestation interface for orchestrators' own tests (Ironic's `fake` flavour): outcomes
 * are set per node uuid with `script()`, or per node through the `fake_outcome` / `fake_delay_ms`
 * `driver_info` fields when the test can only reach the node record. A script wins over `driver_info`.
 * `calls` records every call in order. It never touches the network.
 */
export class FakeAttestation extends AttestationInterface {
  readonly calls: FakeCall[] = [];
  readonly #scripts = new Map<string, FakeScript>();

  /** Sets what the fake answers for `nodeUuid` from now on. */
  script(nodeUuid: string, script: FakeScript): void {
    this.#scripts.set(nodeUuid, script);
  }

  /** Forgets every script and recorded call. */
  reset(): void {
    this.#scripts.clear();
    this.calls.length = 0;
  }

  getProperties(): Record<string, string> {
    return mergeProperties(REQUIRED_PROPERTIES, OPTIONAL_PROPERTIES);
  }

  /**
   * @throws InvalidParameterValue when `fake_outcome` or `fake_delay_ms` is unusable.
   */
  validate(task: Task): void {
    this.calls.push({ operation: 'validate', nodeUuid: task.node.uuid });
    this.#scriptFromDriverInfo(task);
    readOptionalChoice(task.node.driverInfo, 'fake_trust_level', TRUST_LEVELS);
  }

  /** @throws AttestationServiceUnavailable when the node's script says `unavailable`. */
  async startAttestation(task: Task): Promise<void> {
    const script = await this.#answer('startAttestation', task);
    this.#throwIfUnavailable(script);
  }

  /**
   * @throws AttestationFailed when the node's script says `fail`.
   * @throws AttestationServiceUnavailable when it says `unavailable`.
   */
  async validateSecurityStatus(task: Task): Promise<void> {
    const script = await this.#answer('validateSecurityStatus', task);
    this.#throwIfUnavailable(script);
    if (script.outcome === 'fail') {
      throw new AttestationFailed(script.reasons, script.eventIds ?? []);
    }
  }

  /** `driver_info.fake_trust_level`, default `hardware-tpm` (not recorded in `calls`). */
  override trustLevel(task: Task): Promise<TrustLevel> {
    return Promise.resolve(readOptionalChoice(task.node.driverInfo, 'fake_trust_level', TRUST_LEVELS) ?? 'hardware-tpm');
  }

  /** @throws AttestationServiceUnavailable when the node's script says `unavailable`. */
  async unregisterNode(task: Task): Promise<void> {
    const script = await this.#answer('unregisterNode', task);
    this.#throwIfUnavailable(script);
  }

  async #answer(operation: FakeOperation, task: Task): Promise<FakeScript> {
    this.calls.push({ operation, nodeUuid: task.node.uuid });
    const script = this.#scripts.get(task.node.uuid) ?? this.#scriptFromDriverInfo(task);
    task.signal.throwIfAborted();
    if (script.delayMs !== undefined && script.delayMs > 0) {
      await abortableDelay(script.delayMs, task.signal);
    }
    return script;
  }

  #throwIfUnavailable(script: FakeScript): void {
    if (script.outcome === 'unavailable') {
      throw new AttestationServiceUnavailable(script.detail ?? 'fake service scripted as unavailable');
    }
  }

  #scriptFromDriverInfo(task: Task): FakeScript {
    const info = task.node.driverInfo;
    const outcome = readOptionalChoice(info, 'fake_outcome', OUTCOMES) ?? 'pass';
    const delayMs = readOptionalInteger(info, 'fake_delay_ms', 0, 600_000) ?? 0;
    if (outcome === 'fail') {
      return { outcome, reasons: ['fake driver scripted to fail through driver_info.fake_outcome'], delayMs };
    }
    return { outcome, delayMs };
  }
}
