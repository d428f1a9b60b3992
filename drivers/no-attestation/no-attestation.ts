import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { mergeProperties } from '../../interfaces/driver-info.js';

/** `no-attestation` reads no `driver_info` field. */
export const REQUIRED_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({});
export const OPTIONAL_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The default attestation interface: every operation succeeds at once and logs nothing, like
 * Ironic's no-op interfaces (`ironic/drivers/modules/noop.py`). It is what runs, implicitly, at every
 * clean and deploy of a node that has not opted into attestation, so it must cost nothing.
 */
export class NoAttestation extends AttestationInterface {
  getProperties(): Record<string, string> {
    return mergeProperties(REQUIRED_PROPERTIES, OPTIONAL_PROPERTIES);
  }

  validate(): void {}

  startAttestation(): Promise<void> {
    return Promise.resolve();
  }

  validateSecurityStatus(): Promise<void> {
    return Promise.resolve();
  }

  unregisterNode(): Promise<void> {
    return Promise.resolve();
  }
}
