// tsyringe and decorator metadata (class-validator) need the Reflect polyfill loaded first.
import 'reflect-metadata';
import { inject, injectable, type DependencyContainer, type InjectionToken } from 'tsyringe';
import type { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { InterfaceNotEnabled, InterfaceNotFound } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { FakeAttestation } from '../../drivers/fake/fake-attestation.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeDriverOptions } from '../../drivers/keylime/keylime-driver-options.js';
import { NoAttestation } from '../../drivers/no-attestation/no-attestation.js';
import { NodeStore } from './node-store.js';

/** Builds a driver; it may resolve its own dependencies (config, HTTP clients) from the container. */
export type AttestationInterfaceFactory = (container: DependencyContainer) => AttestationInterface;

/** Token: the names of the enabled attestation interfaces, in order (config `enabledAttestationInterfaces`). */
export const ENABLED_ATTESTATION_INTERFACES: InjectionToken<readonly string[]> =
  'ironlime.enabledAttestationInterfaces';

/**
 * Token: the default interface name, or `null` for the first enabled (config
 * `defaultAttestationInterface`). Register `null` with `useFactory: () => null`: tsyringe ignores a
 * `useValue` of `null`.
 */
export const DEFAULT_ATTESTATION_INTERFACE: InjectionToken<string | null> = 'ironlime.defaultAttestationInterface';

/** Token: the container the registry hands to driver factories. */
export const DRIVER_CONTAINER: InjectionToken<DependencyContainer> = 'ironlime.driverContainer';

/**
 * The drivers every registry knows from the start, by name. A driver shipped in this package adds
 * one entry here (for example `keylime: (container) => container.resolve(KeylimeAttestation)`);
 * a third-party driver calls `registerAttestationInterface` instead.
 */
export const BUILTIN_ATTESTATION_INTERFACES: Readonly<Record<string, AttestationInterfaceFactory>> = Object.freeze({
  'no-attestation': () => new NoAttestation(),
  fake: () => new FakeAttestation(),
  keylime: (container) =>
    new KeylimeAttestation({ ...(container.isRegistered(NodeStore, true) ? { nodes: container.resolve(NodeStore) } : {}), ...keylimeDriverOptions(container) }),
});

/**
 * Finds the attestation interface of a node, like Ironic's `driver_factory`: the node's
 * `attestationInterface`, else the configured default, else the first enabled interface. A name must
 * be both known (built in or registered) and enabled. Each driver is built once per registry, on
 * first use, so a `fake` driver scripted by a test is the one the hooks call.
 */
@injectable()
export class DriverRegistry {
  readonly #factories = new Map<string, AttestationInterfaceFactory>(Object.entries(BUILTIN_ATTESTATION_INTERFACES));
  readonly #instances = new Map<string, AttestationInterface>();
  readonly #enabled: readonly string[];

  constructor(
    @inject(ENABLED_ATTESTATION_INTERFACES) enabled: readonly string[],
    @inject(DEFAULT_ATTESTATION_INTERFACE) private readonly defaultName: string | null,
    @inject(DRIVER_CONTAINER) private readonly container: DependencyContainer,
  ) {
    this.#enabled = Object.freeze([...enabled]);
  }

  /** The enabled interface names, in configured order. */
  get enabledNames(): readonly string[] {
    return this.#enabled;
  }

  /** Every name a factory is registered under, enabled or not. */
  get knownNames(): string[] {
    return [...this.#factories.keys()];
  }

  /**
   * Registers (or replaces) the factory of the interface `name`. Registering does not enable it:
   * `enabledAttestationInterfaces` still decides.
   */
  registerAttestationInterface(name: string, factory: AttestationInterfaceFactory): void {
    this.#factories.set(name, factory);
    this.#instances.delete(name);
  }

  /**
   * Checks every enabled name has a factory; call at boot, after registering third-party drivers.
   *
   * @throws InterfaceNotFound for the first enabled name nothing is registered under.
   */
  checkEnabled(): void {
    for (const name of this.#enabled) {
      if (!this.#factories.has(name)) {
        throw new InterfaceNotFound(name, this.#enabled);
      }
    }
  }

  /** The name `node` resolves to: its own field, else the default, else the first enabled. */
  interfaceNameFor(node: Pick<Node, 'attestationInterface'>): string {
    const name = node.attestationInterface ?? this.defaultName ?? this.#enabled[0];
    if (name === undefined) {
      throw new InterfaceNotFound('(none configured)', this.#enabled);
    }
    return name;
  }

  /**
   * The driver of `node`.
   *
   * @throws InterfaceNotFound when the resolved name is unknown, listing the enabled names.
   * @throws InterfaceNotEnabled when it is known but not enabled, listing the enabled names.
   */
  interfaceFor(node: Pick<Node, 'attestationInterface'>): AttestationInterface {
    return this.get(this.interfaceNameFor(node));
  }

  /** The driver registered as `name` (see `interfaceFor` for the errors). */
  get(name: string): AttestationInterface {
    const factory = this.#factories.get(name);
    if (factory === undefined) {
      throw new InterfaceNotFound(name, this.#enabled);
    }
    if (!this.#enabled.includes(name)) {
      throw new InterfaceNotEnabled(name, this.#enabled);
    }
    let driver = this.#instances.get(name);
    if (driver === undefined) {
      driver = factory(this.container);
      this.#instances.set(name, driver);
    }
    return driver;
  }
}
