import type { TrustLevel } from '../lib/identity/trust-level.js';
import type { Task } from './task.js';

/**
 * The contract every attestation driver implements, after the Ironic attestation interface spec
 * (`ironic/drivers/base.py` style: properties, validate, then the operations). Drivers are stateless
 * between calls: everything they need comes from `task` (the node's `driver_info`, the config), so
 * any process can run any step.
 *
 * The orchestrator never calls these directly in normal use: `AttestationHooks`
 * (`lib/provisioning/attestation-hooks.ts`) calls them at clean, deploy and teardown.
 */
export abstract class AttestationInterface {
  readonly interfaceType = 'attestation';

  /**
   * The `driver_info` fields this driver reads: field → description ending in "Required." or
   * "Optional.". Drivers build it from their `REQUIRED_PROPERTIES` and `OPTIONAL_PROPERTIES` maps.
   */
  abstract getProperties(): Record<string, string>;

  /**
   * Checks the node's `driver_info` without any network access or side effect, fast enough to run
   * on every API call.
   *
   * @throws MissingParameterValue listing every missing required field at once.
   * @throws InvalidParameterValue naming the first field whose value is unusable.
   */
  abstract validate(task: Task): void;

  /**
   * Enrols the node with the attestation service and starts monitoring it.
   *
   * @throws AttestationServiceUnavailable when the service cannot be reached or times out.
   * @throws AttestationFailed when the service refuses the node (for example an untrusted EK).
   */
  abstract startAttestation(task: Task): Promise<void>;

  /**
   * Resolves when the attestation service currently considers the node trusted.
   *
   * @throws AttestationFailed with the service's reasons and event ids when the node is untrusted.
   * @throws AttestationServiceUnavailable when no verdict could be obtained in time.
   */
  abstract validateSecurityStatus(task: Task): Promise<void>;

  /**
   * Stops monitoring the node and removes it from the attestation service. Resolves also when the
   * node was not registered, so teardown can be retried.
   *
   * @throws AttestationServiceUnavailable when the service cannot be reached.
   */
  abstract unregisterNode(task: Task): Promise<void>;

  /**
   * How much the node's identity is worth (docs/identity.md): `hardware-tpm`, `emulated-tpm`,
   * `id-secret` or `id-only`, as the attestation service holds it. The hooks compare it with the
   * step's minimum before `startAttestation`. A driver without it counts as `id-only` (fail closed);
   * `no-attestation` is not asked.
   *
   * @throws AttestationServiceUnavailable when the service cannot be reached.
   * @throws AttestationFailed when the service does not know the node.
   */
  trustLevel?(task: Task): Promise<TrustLevel>;
}
