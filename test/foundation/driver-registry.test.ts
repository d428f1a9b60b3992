import { expect } from 'chai';
import { container } from 'tsyringe';
import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { InterfaceNotEnabled, InterfaceNotFound } from '../../interfaces/errors.js';
import { FakeAttestation } from '../../drivers/fake/fake-attestation.js';
import { NoAttestation } from '../../drivers/no-attestation/no-attestation.js';
import {
  DEFAULT_ATTESTATION_INTERFACE,
  DRIVER_CONTAINER,
  DriverRegistry,
  ENABLED_ATTESTATION_INTERFACES,
} from '../../lib/provisioning/driver-registry.js';

class ThirdPartyAttestation extends AttestationInterface {
  getProperties(): Record<string, string> {
    return {};
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

function registry(enabled: string[], defaultName: string | null = null): DriverRegistry {
  const child = container.createChildContainer();
  child.register(ENABLED_ATTESTATION_INTERFACES, { useValue: enabled });
  child.register(DEFAULT_ATTESTATION_INTERFACE, { useFactory: () => defaultName });
  child.register(DRIVER_CONTAINER, { useValue: child });
  return child.resolve(DriverRegistry);
}

function caught(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  return expect.fail('expected an error');
}

describe('driver registry', function () {
  it('resolves the node field, then the default, then the first enabled', function () {
    const withDefault = registry(['no-attestation', 'fake'], 'fake');
    expect(withDefault.interfaceFor({ attestationInterface: 'no-attestation' })).to.be.instanceOf(NoAttestation);
    expect(withDefault.interfaceFor({ attestationInterface: null })).to.be.instanceOf(FakeAttestation);
    const firstEnabled = registry(['fake', 'no-attestation']);
    expect(firstEnabled.interfaceNameFor({ attestationInterface: null })).to.equal('fake');
    expect(firstEnabled.interfaceFor({ attestationInterface: null })).to.be.instanceOf(FakeAttestation);
  });

  it('builds each driver once, so a scripted fake is the one used later', function () {
    const registry1 = registry(['fake']);
    expect(registry1.get('fake')).to.equal(registry1.get('fake'));
    expect(registry(['fake']).get('fake')).to.not.equal(registry1.get('fake'));
  });

  it('names an unknown interface and lists the enabled ones', function () {
    const error = caught(() => registry(['no-attestation', 'fake']).interfaceFor({ attestationInterface: 'keylim' }));
    expect(error).to.be.instanceOf(InterfaceNotFound);
    expect((error as InterfaceNotFound).code).to.equal('ERR_INTERFACE_NOT_FOUND');
    expect(error.message).to.equal(
      'attestation interface "keylim" does not exist; enabled interfaces: no-attestation, fake',
    );
    expect((error as InterfaceNotFound).enabled).to.deep.equal(['no-attestation', 'fake']);
  });

  it('refuses a known interface that is not enabled, listing the enabled ones', function () {
    const error = caught(() => registry(['no-attestation']).interfaceFor({ attestationInterface: 'fake' }));
    expect(error).to.be.instanceOf(InterfaceNotEnabled);
    expect((error as InterfaceNotEnabled).code).to.equal('ERR_INTERFACE_NOT_ENABLED');
    expect(error.message).to.equal('attestation interface "fake" is not enabled; enabled interfaces: no-attestation');
  });

  it('takes third-party drivers by name; enabling stays a config decision', function () {
    const enabled = registry(['no-attestation', 'vendor-x']);
    expect(() => enabled.checkEnabled()).to.throw(InterfaceNotFound, 'attestation interface "vendor-x" does not exist');
    enabled.registerAttestationInterface('vendor-x', () => new ThirdPartyAttestation());
    enabled.checkEnabled();
    expect(enabled.knownNames).to.include.members(['no-attestation', 'fake', 'vendor-x']);
    expect(enabled.interfaceFor({ attestationInterface: 'vendor-x' })).to.be.instanceOf(ThirdPartyAttestation);

    const notEnabled = registry(['no-attestation']);
    notEnabled.registerAttestationInterface('vendor-x', () => new ThirdPartyAttestation());
    expect(() => notEnabled.get('vendor-x')).to.throw(InterfaceNotEnabled);
  });

  it('passes the container to factories so drivers can resolve their dependencies', function () {
    const child = container.createChildContainer();
    child.register(ENABLED_ATTESTATION_INTERFACES, { useValue: ['vendor-x'] });
    child.register(DEFAULT_ATTESTATION_INTERFACE, { useFactory: () => null });
    child.register(DRIVER_CONTAINER, { useValue: child });
    child.register('vendor.endpoint', { useValue: 'https://vendor.example' });
    let seen: unknown;
    const registry2 = child.resolve(DriverRegistry);
    registry2.registerAttestationInterface('vendor-x', (from) => {
      seen = from.resolve('vendor.endpoint');
      return new ThirdPartyAttestation();
    });
    registry2.interfaceFor({ attestationInterface: null });
    expect(seen).to.equal('https://vendor.example');
  });
});
