import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
/** A locator whose ramdisk accepted the connection and never answers. */
const silentLocator = () => new Promise<undefined>(() => undefined);

/** `operation`'s outcome, or a failure when it has not settled within `ms` (a call that hangs for ever). */
async function settledWithin<T>(operation: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([operation.then((value) => ({ value }), (error: unknown) => ({ error })), hung]);
  } finally {
    clearTimeout(timer);
  }
}

// A status deadline of 10 s: the verdicts here come at the first read, which a 1 s deadline gave up on when
// the host stalled during it.
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 10, statusPollIntervalSeconds: 1 } });

// driver_info names agent A from an earlier boot; the ramdisk now reports agent B (ExampleOrchestrator.reportAgent without store).
describe('keylime driver: a ramdisk report naming another agent than driver_info', function () {
  const { fake, info } = useFakeKeylime('ironlime-stale-report-', ALLOWLIST, 'agent-A');

  beforeEach(function () {
    fake.routes.set('GET /v2.1/agents/agent-A', () => [
      200,
      { operational_state: 3, attestation_status: 'PASS', attestation_count: 9, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: JSON.stringify({ node: node({}).uuid }) },
    ]);
  });

  it('is refused with InvalidParameterValue naming both agents, before the verifier is asked', async function () {
    const driver = new KeylimeAttestation({ agentLocator: async () => ({ uuid: 'agent-B' }) });
    for (const operation of [driver.validateSecurityStatus(createTask(node(info), CONFIG)), driver.startAttestation(createTask(node(info), CONFIG))]) {
      const error = await rejection(operation);
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect(error.message).to.equal(
        "driver_info.keylime_agent_uuid: names agent agent-A, but the node's ramdisk now reports agent agent-B: store the new location (locateAgent) or clear keylime_agent_uuid",
      );
    }
    expect(fake.requests).to.deep.equal([]);
  });

  it('changes nothing when the report names the same agent, or there is none', async function () {
    await new KeylimeAttestation({ agentLocator: async () => ({ uuid: 'agent-A' }) }).validateSecurityStatus(createTask(node(info), CONFIG));
    await new KeylimeAttestation({ agentLocator: async () => undefined }).validateSecurityStatus(createTask(node(info), CONFIG));
  });

  it('goes on with the agent driver_info names when the locator itself fails (a ramdisk gone after deploy): as before the locator was asked', async function () {
    const driver = new KeylimeAttestation({
      agentLocator: async () => {
        throw new Error('ramdisk unreachable');
      },
    });
    await driver.validateSecurityStatus(createTask(node(info), CONFIG));
  });

  it('goes on with the agent driver_info names when the locator never answers: it is given the request timeout', async function () {
    const driver = new KeylimeAttestation({ agentLocator: silentLocator, requestTimeoutMs: 500 });
    // 20 s: the locator's bound is 0.5 s; a CI host can stall for seconds, never for twenty.
    const outcome = await settledWithin(driver.validateSecurityStatus(createTask(node(info), CONFIG)), 20_000);
    expect(outcome.error).to.equal(undefined);
  });

  it('ends the locator it stopped waiting for: the task it was given aborts at the timeout', async function () {
    let aborted: (reason: unknown) => void = () => undefined;
    const locatorEnded = new Promise<unknown>((resolve) => (aborted = resolve));
    // A locator that asks a silent ramdisk, and stops when its task's signal tells it to.
    const driver = new KeylimeAttestation({
      agentLocator: (task) =>
        new Promise<undefined>((resolve) => {
          task.signal.addEventListener('abort', () => {
            aborted(task.signal.reason);
            resolve(undefined);
          }, { once: true });
        }),
      requestTimeoutMs: 500,
    });
    const outcome = await settledWithin(driver.validateSecurityStatus(createTask(node(info), CONFIG)), 20_000);
    expect(outcome.error).to.equal(undefined);
    const reason = (await settledWithin(locatorEnded, 20_000)).value;
    expect(reason).to.be.instanceOf(AttestationServiceUnavailable);
    expect((reason as Error).message).to.match(/the agent locator gave no answer within 500 ms$/);
  });

  it('leaves nothing on a step signal that outlives the calls (an orchestrator\'s one for every step) once the locator answered', async function () {
    const steps = new AbortController();
    const driver = new KeylimeAttestation({ agentLocator: async () => ({ uuid: 'agent-A' }) });
    for (let call = 0; call < 5; call += 1) await driver.validateSecurityStatus(createTask(node(info), CONFIG, { signal: steps.signal }));
    expect(getEventListeners(steps.signal, 'abort')).to.have.length(0);
    // Node's own record of the signals made to follow this one (`AbortSignal.any`): in Node 20 it keeps
    // an entry for each as long as this signal lives, one more at every call.
    const followers = Object.getOwnPropertySymbols(steps.signal).find((symbol) => symbol.description === 'kDependantSignals');
    const held = followers === undefined ? undefined : (steps.signal as unknown as Record<symbol, Set<unknown> | undefined>)[followers];
    expect(held?.size ?? 0).to.equal(0);
  });

  it('is AttestationServiceUnavailable when driver_info names no agent and the locator never answers; the step abort ends it at once', async function () {
    const { keylime_agent_uuid: _named, ...withoutAgent } = info;
    const driver = new KeylimeAttestation({ agentLocator: silentLocator, requestTimeoutMs: 500 });
    const silent = await settledWithin(driver.validateSecurityStatus(createTask(node(withoutAgent), CONFIG)), 20_000);
    expect(silent.error).to.be.instanceOf(AttestationServiceUnavailable);
    expect((silent.error as Error).message).to.match(/the agent locator gave no answer within 500 ms$/);
    let asked: (signal: AbortSignal) => void = () => undefined;
    const locatorAsked = new Promise<AbortSignal>((resolve) => (asked = resolve));
    const patient = new KeylimeAttestation({
      agentLocator: (task) => {
        asked(task.signal);
        return silentLocator();
      },
      requestTimeoutMs: 3_600_000,
    });
    const controller = new AbortController();
    const operation = patient.startAttestation(createTask(node(withoutAgent), CONFIG, { signal: controller.signal }));
    const locatorSignal = await locatorAsked;
    const reason = new Error('step timed out');
    controller.abort(reason);
    expect((await settledWithin(operation, 20_000)).error).to.equal(reason);
    expect(locatorSignal.reason, 'the locator is told of the step abort, with its reason').to.equal(reason);
    expect(fake.requests).to.deep.equal([]);
  });
});
