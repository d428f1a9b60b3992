import { expect } from 'chai';
import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import { checkRequiredProperties, mergeProperties, readOptionalInteger } from '../../interfaces/driver-info.js';
import {
  AttestationFailed,
  AttestationServiceUnavailable,
  InvalidParameterValue,
  MissingParameterValue,
} from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import * as fake from '../../drivers/fake/fake-attestation.js';
import * as noAttestation from '../../drivers/no-attestation/no-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';

const CONFIG = buildConfig({});

function node(driverInfo: Record<string, unknown> = {}, uuid = '0b6a2f5e-36f8-4c5c-9a3e-bb1c1f7c2a10'): Node {
  const epoch = new Date(0);
  return {
    uuid,
    name: null,
    provisionState: 'cleaning',
    attestationInterface: null,
    driverInfo,
    instanceInfo: {},
    lastAttestation: { status: null, reason: null, eventIds: [], at: null },
    createdAt: epoch,
    updatedAt: epoch,
  };
}

/** A driver with required fields, as the keylime driver will have, to pin the validate contract. */
class TwoFieldAttestation extends AttestationInterface {
  static readonly REQUIRED = { keylime_agent_uuid: 'Agent UUID. Required.', keylime_allowlist: 'Allowlist URL. Required.' };
  getProperties(): Record<string, string> {
    return mergeProperties(TwoFieldAttestation.REQUIRED, { keylime_agent_port: 'Agent port. Optional.' });
  }
  validate(task: Task): void {
    checkRequiredProperties(task.node.driverInfo, TwoFieldAttestation.REQUIRED);
    readOptionalInteger(task.node.driverInfo, 'keylime_agent_port', 1, 65_535);
  }
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

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => expect.fail('expected a rejection'), (error: unknown) => error);
}

describe('attestation drivers', function () {
  it('document every property with a description ending in Required. or Optional.', function () {
    for (const driver of [new noAttestation.NoAttestation(), new fake.FakeAttestation(), new TwoFieldAttestation()]) {
      expect(driver.interfaceType).to.equal('attestation');
      for (const description of Object.values(driver.getProperties())) {
        expect(description).to.match(/ (Required|Optional)\.$/);
      }
    }
    for (const description of Object.values(fake.OPTIONAL_PROPERTIES)) {
      expect(description).to.match(/ Optional\.$/);
    }
    expect(noAttestation.REQUIRED_PROPERTIES).to.deep.equal({});
  });

  it('validate lists every missing field at once', function () {
    const driver = new TwoFieldAttestation();
    const error = (() => {
      try {
        driver.validate(createTask(node({ keylime_allowlist: '' }), CONFIG));
      } catch (caught) {
        return caught as MissingParameterValue;
      }
      return expect.fail('expected MissingParameterValue');
    })();
    expect(error).to.be.instanceOf(MissingParameterValue);
    expect(error.code).to.equal('ERR_MISSING_PARAMETER_VALUE');
    expect(error.fields).to.deep.equal(['keylime_agent_uuid', 'keylime_allowlist']);
    expect(error.message).to.equal('driver_info is missing required field(s): keylime_agent_uuid, keylime_allowlist');
  });

  it('validate names the field whose value is unusable', function () {
    const task = createTask(node({ keylime_agent_uuid: 'a', keylime_allowlist: 'b', keylime_agent_port: '70000' }), CONFIG);
    expect(() => new TwoFieldAttestation().validate(task)).to.throw(
      InvalidParameterValue,
      'driver_info.keylime_agent_port: must be an integer from 1 to 65535',
    );
    expect(() => new fake.FakeAttestation().validate(createTask(node({ fake_outcome: 'maybe' }), CONFIG))).to.throw(
      InvalidParameterValue,
      'driver_info.fake_outcome: must be one of pass, fail, unavailable, got "maybe"',
    );
  });

  it('no-attestation succeeds at every operation', async function () {
    const driver: AttestationInterface = new noAttestation.NoAttestation();
    const task = createTask(node({ anything: 'ignored' }), CONFIG);
    driver.validate(task);
    expect(await driver.startAttestation(task)).to.equal(undefined);
    expect(await driver.validateSecurityStatus(task)).to.equal(undefined);
    expect(await driver.unregisterNode(task)).to.equal(undefined);
    expect(driver.getProperties()).to.deep.equal({});
  });

  it('fake answers per node as scripted and records its calls', async function () {
    const driver = new fake.FakeAttestation();
    const good = node({}, '11111111-1111-4111-8111-111111111111');
    const bad = node({}, '22222222-2222-4222-8222-222222222222');
    const down = node({}, '33333333-3333-4333-8333-333333333333');
    driver.script(bad.uuid, { outcome: 'fail', reasons: ['pcr 7 mismatch'], eventIds: ['measured_boot.invalid_pcr_7'] });
    driver.script(down.uuid, { outcome: 'unavailable', detail: 'verifier timed out' });

    await driver.startAttestation(createTask(good, CONFIG));
    await driver.validateSecurityStatus(createTask(good, CONFIG));
    await driver.startAttestation(createTask(bad, CONFIG));
    const failed = (await rejection(driver.validateSecurityStatus(createTask(bad, CONFIG)))) as AttestationFailed;
    expect(failed).to.be.instanceOf(AttestationFailed);
    expect(failed.reasons).to.deep.equal(['pcr 7 mismatch']);
    expect(failed.eventIds).to.deep.equal(['measured_boot.invalid_pcr_7']);
    expect(failed.message).to.equal('attestation failed: pcr 7 mismatch');
    const unavailable = await rejection(driver.unregisterNode(createTask(down, CONFIG)));
    expect(unavailable).to.be.instanceOf(AttestationServiceUnavailable);
    expect((unavailable as Error).message).to.equal('attestation service unavailable: verifier timed out');
    expect(driver.calls.map((call) => call.operation)).to.deep.equal([
      'startAttestation',
      'validateSecurityStatus',
      'startAttestation',
      'validateSecurityStatus',
      'unregisterNode',
    ]);

    const fromDriverInfo = node({ fake_outcome: 'fail' }, '44444444-4444-4444-8444-444444444444');
    expect(await rejection(driver.validateSecurityStatus(createTask(fromDriverInfo, CONFIG)))).to.be.instanceOf(
      AttestationFailed,
    );
  });

  it('fake delays and stops waiting as soon as the task is aborted', async function () {
    const driver = new fake.FakeAttestation();
    const slow = node({}, '55555555-5555-4555-8555-555555555555');
    driver.script(slow.uuid, { outcome: 'pass', delayMs: 30 });
    const started = Date.now();
    await driver.validateSecurityStatus(createTask(slow, CONFIG));
    expect(Date.now() - started).to.be.at.least(25);

    driver.script(slow.uuid, { outcome: 'pass', delayMs: 60_000 });
    const controller = new AbortController();
    const reason = new Error('orchestrator cancelled the step');
    const pending = driver.validateSecurityStatus(createTask(slow, CONFIG, { signal: controller.signal }));
    setTimeout(() => controller.abort(reason), 10);
    const abortStarted = Date.now();
    expect(await rejection(pending)).to.equal(reason);
    // The delay is 60 s; 10 s leaves room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - abortStarted).to.be.below(10_000);
    expect(await rejection(driver.startAttestation(createTask(slow, CONFIG, { signal: controller.signal })))).to.equal(
      reason,
    );
  });
});
