import { expect } from 'chai';
import type { DependencyContainer } from 'tsyringe';
import { AttestationInterface } from '../../interfaces/attestation-interface.js';
import {
  AttestationFailed,
  AttestationServiceUnavailable,
  InterfaceNotEnabled,
  InterfaceNotFound,
  InvalidParameterValue,
  MissingParameterValue,
} from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import type { Task, TaskLogger } from '../../interfaces/task.js';
import { FakeAttestation } from '../../drivers/fake/fake-attestation.js';
import type { TrustLevel } from '../../lib/identity/trust-level.js';
import { buildConfig } from '../../lib/config/load-config.js';
import type { IronlimeConfig } from '../../lib/config/ironlime-config.js';
import { AttestationHooks } from '../../lib/provisioning/attestation-hooks.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { DriverRegistry } from '../../lib/provisioning/driver-registry.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { createProvisioningContainer } from '../../lib/provisioning/provisioning-container.js';
import { forEachDatabase, type DatabaseFixture } from '../helpers/databases.js';

interface LogLine {
  readonly level: keyof TaskLogger;
  readonly context: Record<string, unknown>;
  readonly message: string;
}

function recordingLogger(lines: LogLine[]): TaskLogger {
  const at = (level: keyof TaskLogger) => (context: Record<string, unknown>, message: string) => {
    lines.push({ level, context, message });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A driver whose service is a closed TCP port: every network operation fails with a raw fetch error. */
class UnreachableAttestation extends AttestationInterface {
  getProperties(): Record<string, string> {
    return {};
  }
  validate(): void {}
  async startAttestation(): Promise<void> {
    await fetch('http://127.0.0.1:9/agents', { signal: AbortSignal.timeout(5_000) });
  }
  async validateSecurityStatus(): Promise<void> {
    await fetch('http://127.0.0.1:9/agents', { signal: AbortSignal.timeout(5_000) });
  }
  unregisterNode(): Promise<void> {
    return Promise.reject(new AttestationServiceUnavailable('connection refused'));
  }
}

/** A driver whose policy document fails its checksum when attestation starts (the keylime driver's refusal). */
class TamperedPolicyAttestation extends UnreachableAttestation {
  override async startAttestation(): Promise<void> {
    throw new InvalidParameterValue('driver_info.keylime_allowlist_checksum', 'the fetched keylime_allowlist has another sha256');
  }
}

/** A driver whose node has no agent yet when attestation starts (the keylime driver whose locator has no report). */
class UnlocatedAgentAttestation extends TamperedPolicyAttestation {
  override trustLevel(): Promise<TrustLevel> {
    return Promise.reject(new MissingParameterValue(['keylime_agent_uuid']));
  }
}

interface Setup {
  readonly hooks: AttestationHooks;
  readonly store: NodeStore;
  readonly fake: FakeAttestation;
  readonly config: Readonly<IronlimeConfig>;
  readonly logs: LogLine[];
  task(node: Node, signal?: AbortSignal): Task;
}

function setup(fixture: DatabaseFixture, keylime: Record<string, unknown> = {}): Setup {
  const config = buildConfig({ enabledAttestationInterfaces: ['no-attestation', 'fake', 'unreachable'], keylime });
  const container: DependencyContainer = createProvisioningContainer({
    config,
    database: fixture.database,
    attestationInterfaces: { unreachable: () => new UnreachableAttestation() },
  });
  const logs: LogLine[] = [];
  const logger = recordingLogger(logs);
  return {
    hooks: container.resolve(AttestationHooks),
    store: container.resolve(NodeStore),
    fake: container.resolve(DriverRegistry).get('fake') as FakeAttestation,
    config,
    logs,
    task: (node, signal) => createTask(node, config, { logger, ...(signal === undefined ? {} : { signal }) }),
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => expect.fail('expected a rejection'), (error: unknown) => error);
}

const BAD_BOOT = {
  outcome: 'fail',
  reasons: ['pcr 4 does not match the boot policy'],
  eventIds: ['measured_boot.invalid_pcr_4'],
} as const;

forEachDatabase(
  'attestation hooks',
  (fixture) => {
    it('no-attestation passes silently through clean, deploy and teardown', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ provisionState: 'cleaning' });
      const task = s.task(node);
      for (const outcome of [
        await s.hooks.onCleanStart(task),
        await s.hooks.onCleanEnd(task),
        await s.hooks.onDeployStart(task),
        await s.hooks.onDeployEnd(task),
      ]) {
        expect(outcome).to.include({ interfaceName: 'no-attestation', status: 'passed', recorded: false });
      }
      await s.hooks.onTeardown(task);
      expect(s.logs).to.deep.equal([]);
      expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal(null);
    });

    it('a passing node is recorded as passed; start hooks start then check, end hooks only check', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ attestationInterface: 'fake' });
      const outcome = await s.hooks.onCleanStart(s.task(node));
      expect(outcome).to.deep.equal({
        stage: 'clean-start',
        interfaceName: 'fake',
        status: 'passed',
        reasons: [],
        eventIds: [],
        recorded: true,
        trustLevel: 'hardware-tpm',
      });
      await s.hooks.onDeployEnd(s.task(node));
      await s.hooks.onTeardown(s.task(node));
      expect(s.fake.calls.map((call) => call.operation)).to.deep.equal([
        'validate', 'startAttestation', 'validateSecurityStatus',
        'validate', 'validateSecurityStatus',
        'validate', 'unregisterNode',
      ]);
      const stored = await s.store.getNode(node.uuid);
      expect(stored.lastAttestation).to.include({ status: 'passed', reason: null });
      expect(stored.lastAttestation.at).to.be.instanceOf(Date);
      expect(s.logs.map((line) => [line.level, line.message])).to.deep.equal([
        ['info', 'attestation passed'],
        ['info', 'attestation passed'],
      ]);
    });

    for (const [stage, flag] of [
      ['clean', 'failCleanOnAttestationFailure'],
      ['deploy', 'failDeployOnAttestationFailure'],
    ] as const) {
      it(`${flag}=true fails the ${stage} step with the reasons and event ids`, async function () {
        const s = setup(fixture, { [flag]: true });
        const node = await s.store.createNode({ attestationInterface: 'fake' });
        s.fake.script(node.uuid, BAD_BOOT);
        const start = stage === 'clean' ? s.hooks.onCleanStart(s.task(node)) : s.hooks.onDeployStart(s.task(node));
        const error = (await rejection(start)) as AttestationFailed;
        expect(error).to.be.instanceOf(AttestationFailed);
        expect(error.code).to.equal('ERR_ATTESTATION_FAILED');
        expect(error.message).to.equal('attestation failed: pcr 4 does not match the boot policy');
        expect(error.reasons).to.deep.equal(BAD_BOOT.reasons);
        expect(error.eventIds).to.deep.equal(BAD_BOOT.eventIds);
        expect((await s.store.getNode(node.uuid)).lastAttestation).to.include({
          status: 'failed',
          reason: 'pcr 4 does not match the boot policy',
        });
        expect((await s.store.getNode(node.uuid)).lastAttestation.eventIds).to.deep.equal(BAD_BOOT.eventIds);
        expect(s.logs.map((line) => line.level)).to.deep.equal(['error']);
      });

      it(`${flag}=false records and logs the failure and lets the ${stage} step go on`, async function () {
        const s = setup(fixture, { [flag]: false });
        const node = await s.store.createNode({ attestationInterface: 'fake' });
        s.fake.script(node.uuid, BAD_BOOT);
        const outcome = stage === 'clean' ? await s.hooks.onCleanEnd(s.task(node)) : await s.hooks.onDeployEnd(s.task(node));
        expect(outcome).to.include({ status: 'failed', recorded: true, stage: `${stage}-end` });
        expect(outcome.eventIds).to.deep.equal(BAD_BOOT.eventIds);
        expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal('failed');
        expect(s.logs).to.have.length(1);
        expect(s.logs[0]).to.deep.include({ level: 'warn', message: 'attestation failed; continuing because the fail flag is off' });
        expect(s.logs[0]?.context).to.deep.include({ node: node.uuid, reasons: BAD_BOOT.reasons });

        const other = stage === 'clean' ? s.hooks.onDeployEnd(s.task(node)) : s.hooks.onCleanEnd(s.task(node));
        expect(await rejection(other)).to.be.instanceOf(AttestationFailed);
      });
    }

    it('fails closed when the service is unavailable', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ attestationInterface: 'fake' });
      s.fake.script(node.uuid, { outcome: 'unavailable', detail: 'verifier did not answer in 300 s' });
      const error = (await rejection(s.hooks.onDeployStart(s.task(node)))) as AttestationFailed;
      expect(error).to.be.instanceOf(AttestationFailed);
      expect(error.reasons).to.deep.equal(['attestation service unavailable: verifier did not answer in 300 s']);
      expect(error.cause).to.be.instanceOf(AttestationServiceUnavailable);
      expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal('unavailable');
    });

    it('fails closed on a raw network error from an unreachable service', async function () {
      const s = setup(fixture);
      const node = await s.store.createNode({ attestationInterface: 'unreachable' });
      const error = (await rejection(s.hooks.onCleanStart(s.task(node)))) as AttestationFailed;
      expect(error).to.be.instanceOf(AttestationFailed);
      expect(error.reasons[0]).to.match(/^unexpected error from the attestation driver: fetch failed$/);
      expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal('unavailable');
      const teardown = await rejection(s.hooks.onTeardown(s.task(node)));
      expect(teardown).to.be.instanceOf(AttestationServiceUnavailable);
    });

    it('refuses an unknown or disabled interface before any operation, listing the enabled ones', async function () {
      const s = setup(fixture);
      const unknown = await s.store.createNode({ attestationInterface: 'acme-tpm' });
      const notFound = (await rejection(s.hooks.onCleanStart(s.task(unknown)))) as InterfaceNotFound;
      expect(notFound).to.be.instanceOf(InterfaceNotFound);
      expect(notFound.message).to.equal(
        'attestation interface "acme-tpm" does not exist; enabled interfaces: no-attestation, fake, unreachable',
      );
      const narrow = createProvisioningContainer({ config: buildConfig({}), database: fixture.database });
      const disabled = await s.store.createNode({ attestationInterface: 'fake' });
      const notEnabled = await rejection(narrow.resolve(AttestationHooks).onDeployStart(s.task(disabled)));
      expect(notEnabled).to.be.instanceOf(InterfaceNotEnabled);
      expect((notEnabled as Error).message).to.equal(
        'attestation interface "fake" is not enabled; enabled interfaces: no-attestation',
      );
      expect((await s.store.getNode(unknown.uuid)).lastAttestation.status).to.equal(null);
      expect((await s.store.getNode(disabled.uuid)).lastAttestation.status).to.equal(null);
    });

    it('stops at validate on bad driver_info, whatever the fail flags say', async function () {
      const s = setup(fixture, { failCleanOnAttestationFailure: false });
      const node = await s.store.createNode({ attestationInterface: 'fake', driverInfo: { fake_delay_ms: -1 } });
      const error = await rejection(s.hooks.onCleanStart(s.task(node)));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as Error).message).to.equal('driver_info.fake_delay_ms: must be an integer from 0 to 600000');
      expect(s.fake.calls.map((call) => call.operation)).to.deep.equal(['validate']);
      expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal(null);
    });

    /**
     * `onCleanStart` on a node of driver `name` (made by `make`), whose operation throws: `expected`
     * with `message` is rethrown and nothing recorded, with the clean fail flag on and off.
     */
    async function expectRethrownUnrecorded(name: string, make: () => AttestationInterface, expected: typeof InvalidParameterValue | typeof MissingParameterValue, message: string): Promise<void> {
      for (const failClean of [true, false]) {
        const config = buildConfig({ enabledAttestationInterfaces: [name], keylime: { failCleanOnAttestationFailure: failClean } });
        const container = createProvisioningContainer({ config, database: fixture.database, attestationInterfaces: { [name]: make } });
        const store = container.resolve(NodeStore);
        const node = await store.createNode({ attestationInterface: name });
        const error = await rejection(container.resolve(AttestationHooks).onCleanStart(createTask(node, config)));
        expect(error, `failCleanOnAttestationFailure ${failClean}`).to.be.instanceOf(expected);
        expect((error as Error).message).to.equal(message);
        expect((await store.getNode(node.uuid)).lastAttestation.status).to.equal(null);
      }
    }

    it('rethrows a driver operation\'s InvalidParameterValue (a policy failing its checksum) unrecorded, whatever the fail flags', async function () {
      await expectRethrownUnrecorded('tampered', () => new TamperedPolicyAttestation(), InvalidParameterValue, 'driver_info.keylime_allowlist_checksum: the fetched keylime_allowlist has another sha256');
    });

    it("rethrows a driver operation's MissingParameterValue (no agent located yet) unrecorded, whatever the fail flags", async function () {
      await expectRethrownUnrecorded('unlocated', () => new UnlocatedAgentAttestation(), MissingParameterValue, 'driver_info is missing required field(s): keylime_agent_uuid');
    });

    it('rethrows an abort of the task unrecorded', async function () {
      const s = setup(fixture, { failCleanOnAttestationFailure: false });
      const node = await s.store.createNode({ attestationInterface: 'fake' });
      s.fake.script(node.uuid, { outcome: 'pass', delayMs: 60_000 });
      const controller = new AbortController();
      const pending = s.hooks.onCleanStart(s.task(node, controller.signal));
      const reason = new Error('cleaning cancelled by the operator');
      controller.abort(reason);
      expect(await rejection(pending)).to.equal(reason);
      expect((await s.store.getNode(node.uuid)).lastAttestation.status).to.equal(null);
    });

    it('rejects a config whose enabled interface has no driver, at boot', function () {
      expect(() =>
        createProvisioningContainer({
          config: buildConfig({ enabledAttestationInterfaces: ['no-attestation', 'acme-tpm'] }),
          database: fixture.database,
        }),
      ).to.throw(InterfaceNotFound, 'attestation interface "acme-tpm" does not exist');
    });
  },
  { migrate: true },
);
