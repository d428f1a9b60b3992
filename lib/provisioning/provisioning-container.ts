// tsyringe and decorator metadata (class-validator) need the Reflect polyfill loaded first.
import 'reflect-metadata';
import { container as rootContainer, Lifecycle, type DependencyContainer } from 'tsyringe';
import type { IronlimeSettings } from '../../interfaces/settings.js';
import { IRONLIME_CONFIG } from '../config/config-token.js';
import type { Database } from '../db/database-factory.js';
import { DATABASE } from '../db/database-token.js';
import { AttestationHooks } from './attestation-hooks.js';
import {
  DEFAULT_ATTESTATION_INTERFACE,
  DRIVER_CONTAINER,
  DriverRegistry,
  ENABLED_ATTESTATION_INTERFACES,
  type AttestationInterfaceFactory,
} from './driver-registry.js';
import { NodeStore } from './node-store.js';

export interface ProvisioningContainerOptions {
  /** The frozen configuration (`loadConfig` / `buildConfig`). */
  readonly config: IronlimeSettings;
  /** An open database, already migrated (`createDatabase`, `migrateLatest`). */
  readonly database: Database;
  /** Third-party drivers by name; they still have to be listed in `enabledAttestationInterfaces`. */
  readonly attestationInterfaces?: Readonly<Record<string, AttestationInterfaceFactory>>;
  /** The container to derive from; defaults to tsyringe's root container. */
  readonly parent?: DependencyContainer;
}

/**
 * Builds the child container an orchestrator resolves `AttestationHooks`, `NodeStore` and
 * `DriverRegistry` from (each a singleton of this container). Nothing is registered in the parent, so
 * two containers (two configs, two databases) never see each other's drivers.
 *
 * @throws InterfaceNotFound when an enabled interface name has no driver, so a typo fails at boot.
 */
export function createProvisioningContainer(options: ProvisioningContainerOptions): DependencyContainer {
  const child = (options.parent ?? rootContainer).createChildContainer();
  const { config } = options;
  child.register(IRONLIME_CONFIG, { useValue: config });
  child.register(DATABASE, { useValue: options.database });
  child.register(ENABLED_ATTESTATION_INTERFACES, { useValue: config.enabledAttestationInterfaces });
  // A factory, not `useValue`: tsyringe treats `useValue: null` as no provider at all.
  const defaultName = config.defaultAttestationInterface ?? null;
  child.register(DEFAULT_ATTESTATION_INTERFACE, { useFactory: () => defaultName });
  child.register(DRIVER_CONTAINER, { useValue: child });
  child.register(DriverRegistry, { useClass: DriverRegistry }, { lifecycle: Lifecycle.Singleton });
  child.register(NodeStore, { useClass: NodeStore }, { lifecycle: Lifecycle.Singleton });
  child.register(AttestationHooks, { useClass: AttestationHooks }, { lifecycle: Lifecycle.Singleton });
  const registry = child.resolve(DriverRegistry);
  for (const [name, factory] of Object.entries(options.attestationInterfaces ?? {})) {
    registry.registerAttestationInterface(name, factory);
  }
  registry.checkEnabled();
  return child;
}
