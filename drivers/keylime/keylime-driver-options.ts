import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { KeylimeAttestationOptions } from './keylime-attestation.js';

/**
 * Token: options for the built-in `keylime` driver (`agentLocator`, `extraEkCaDirs`, timeouts, …).
 * Register it in the provisioning container's parent (or pass your own `keylime` factory to
 * `createProvisioningContainer`) before the driver is first used; `nodes` defaults to the container's
 * `NodeStore`.
 */
export const KEYLIME_DRIVER_OPTIONS: InjectionToken<KeylimeAttestationOptions> = 'ironlime.keylimeDriverOptions';

/** The registered `KEYLIME_DRIVER_OPTIONS`, or none. */
export function keylimeDriverOptions(container: DependencyContainer): KeylimeAttestationOptions {
  return container.isRegistered(KEYLIME_DRIVER_OPTIONS, true) ? container.resolve(KEYLIME_DRIVER_OPTIONS) : {};
}
