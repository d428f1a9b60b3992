import type { Socket } from 'node:net';
import { expect } from 'chai';
import { AttestationFailed, AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { NO_ANSWER } from './fake-keylime.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00023';
const NODE = '5a0e1d9c-0d7e-4a57-8f49-6c7a4e1f2b10';
const OURS = JSON.stringify({ node: NODE });
const STATUS_TIMEOUT_S = 2;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: STATUS_TIMEOUT_S, statusPollIntervalSeconds: 1 } });
/**
 * For the tests of a reply's size, not of the deadline: a 9 MiB reply read and refused within 2 s lost
 * that race on a loaded CI host, and ended as "no verdict" instead of "larger than".
 */
const SIZE_CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 30, statusPollIntervalSeconds: 1 } });
/** Far beyond the status deadline: anything that waits for it shows. */
const REQUEST_TIMEOUT_MS = 20_000;

/**
 * What `validateSecurityStatus` leaves behind and how long it takes when the verifier stalls on one of
 * its reads, and how large a reply it reads: every read is bounded by `statusTimeoutSeconds`, every
 * connection it opened is closed when it returns, and a reply larger than any real one is refused.
 */
describe('keylime driver: status reads bounded in time, connections and size', function () {
  const { fake, info } = useFakeKeylime('ironlime-status-bounds-', ALLOWLIST, AGENT);
  const sockets: Socket[] = [];

  before(function () {
    fake.server.on('connection', (socket: Socket) => sockets.push(socket));
  });

  beforeEach(function () {
    sockets.length = 0;
  });

  const validate = (config = CONFIG): Promise<void> => new KeylimeAttestation({ requestTimeoutMs: REQUEST_TIMEOUT_MS }).validateSecurityStatus(createTask(node(info), config));

  /**
   * The server's connections still open 5 s after the driver returned (the client's FIN needs turns to
   * arrive: after a stall of the host, a fixed 300 ms timer ran before it), well short of the 20 s request
   * timeout that would close a leaked one.
   */
  async function openConnectionsSoonAfter(): Promise<Socket[]> {
    const open = (): Socket[] => sockets.filter((socket) => !socket.destroyed);
    const deadline = performance.now() + 5000;
    while (open().length > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    return open();
  }

  it('closes the liveness client of a read it abandoned at the deadline (no socket or timer left to the request timeout)', async function () {
    fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}`, () => [
      200,
      { agent_id: AGENT, ek_tpm: null, ekcert: null, aik_tpm: null, mtls_cert: null, ip: '127.0.0.1', port: 9002, regcount: 1, identity_mode: 'id-only', trust_level: 'id-only' },
    ]);
    fake.routes.set(`GET /v2.3/liveness/${AGENT}`, () => NO_ANSWER);
    const error = await rejection(validate());
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(fake.requests).to.include(`GET /v2.3/liveness/${AGENT}`);
    expect(await openConnectionsSoonAfter()).to.have.length(0);
  });

  it('ends a final FAIL whose /history read stalls at the status deadline, with the verdict\'s own reasons', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 9, attestation_count: 3, last_event_id: 'pcr_validation.invalid_pcr_0', severity_level: 6, meta_data: OURS }]);
    fake.routes.set(`GET /v2.1/agents/${AGENT}/history`, () => NO_ANSWER);
    const started = performance.now();
    const error = await rejection(validate());
    const tookMs = performance.now() - started;
    expect(error).to.be.instanceOf(AttestationFailed);
    expect((error as AttestationFailed).reasons).to.deep.equal(['the verifier marked the agent "Invalid Quote" (last event pcr_validation.invalid_pcr_0, severity level 6)']);
    expect((error as AttestationFailed).eventIds).to.deep.equal(['pcr_validation.invalid_pcr_0']);
    expect(fake.requests).to.include(`GET /v2.1/agents/${AGENT}/history`);
    // Not the request timeout (20 s): the status deadline plus room for a CI host that stalls this process for ~3 s.
    expect(tookMs).to.be.below(STATUS_TIMEOUT_S * 1000 + 6000);
    expect(await openConnectionsSoonAfter()).to.have.length(0);
  });

  it('keeps a final FAIL when the step is aborted during its /history read: the verdict\'s own reasons, at once', async function () {
    const controller = new AbortController();
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 9, attestation_count: 3, last_event_id: 'pcr_validation.invalid_pcr_0', severity_level: 6, meta_data: OURS }]);
    fake.routes.set(`GET /v2.1/agents/${AGENT}/history`, () => {
      controller.abort(new Error('step aborted'));
      return NO_ANSWER;
    });
    const started = performance.now();
    // A status deadline of 60 s here, so neither it nor the request timeout (20 s) can end the read within the bound.
    const config = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 60, statusPollIntervalSeconds: 1 } });
    const error = await rejection(new KeylimeAttestation({ requestTimeoutMs: REQUEST_TIMEOUT_MS }).validateSecurityStatus(createTask(node(info), config, { signal: controller.signal })));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect((error as AttestationFailed).eventIds).to.deep.equal(['pcr_validation.invalid_pcr_0']);
    // At once, with room for a CI host that stalls this process for ~3 s.
    expect(performance.now() - started).to.be.below(8000);
    expect(await openConnectionsSoonAfter()).to.have.length(0);
  });

  it('refuses a status reply larger than any real one as a service error, never as trusted', async function () {
    const padded = JSON.stringify({ node: NODE, padding: 'x'.repeat(9 * 1024 * 1024) });
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 3, attestation_status: 'PASS', attestation_count: 5, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: padded },
    ]);
    const error = await rejection(validate(SIZE_CONFIG));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.include('larger than');
  });

  it('takes a real-sized status reply (a 1 MiB meta_data, the verifier\'s own bound)', async function () {
    const large = JSON.stringify({ node: NODE, padding: 'x'.repeat(1024 * 1024 - 100) });
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 3, attestation_status: 'PASS', attestation_count: 5, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: large },
    ]);
    await validate(SIZE_CONFIG);
  });

  it('takes the status of an enrolment at the ironlime verifier\'s bounds in its largest encoding (1 Mi characters of meta_data and of tpm_policy)', async function () {
    // Both texts are stored as sent and sent back as JSON strings: a character outside ASCII takes up to
    // 3 bytes, a newline (JSON whitespace) 2; the enrolment DTO bounds each text to 1 Mi UTF-16 units.
    const open = JSON.stringify({ node: NODE }).slice(0, -1) + ',"note":"';
    const metaData = `${open}${'\u20ac'.repeat(1024 * 1024 - open.length - 2)}"}`;
    const tpmPolicy = `{"mask":"0x0"${'\n'.repeat(1024 * 1024 - 14)}}`;
    expect([metaData.length, tpmPolicy.length]).to.deep.equal([1024 * 1024, 1024 * 1024]);
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 3, attestation_status: 'PASS', attestation_count: 5, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: metaData, tpm_policy: tpmPolicy },
    ]);
    await validate(SIZE_CONFIG);
  });

  it('reads a final FAIL with a /history reply larger than any real one as the verdict\'s own reasons', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 9, attestation_count: 3, last_event_id: 'pcr_validation.invalid_pcr_0', severity_level: 6, meta_data: OURS }]);
    const failures = [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { message: 'x'.repeat(9 * 1024 * 1024) } }];
    fake.routes.set(`GET /v2.1/agents/${AGENT}/history`, () => [200, { history: [{ outcome: 'fail', failures }] }]);
    const error = await rejection(validate(SIZE_CONFIG));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect((error as AttestationFailed).eventIds).to.deep.equal(['pcr_validation.invalid_pcr_0']);
    expect((error as AttestationFailed).reasons).to.have.length(1);
  });
});
