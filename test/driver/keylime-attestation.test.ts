import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  AttestationFailed,
  AttestationServiceUnavailable,
  InvalidParameterValue,
  MissingParameterValue,
} from '../../interfaces/errors.js';
import type { DriverInfo, Node } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import type { AgentLocation, DriverInfoWriter } from '../../drivers/keylime/agent-locator.js';
import { buildEnrolmentPolicy } from '../../drivers/keylime/enrolment-policy.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { parseKeylimeDriverInfo } from '../../drivers/keylime/keylime-driver-info.js';
import { OPTIONAL_PROPERTIES, REQUIRED_PROPERTIES } from '../../drivers/keylime/keylime-properties.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { closedPort } from '../helpers/ports.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';
import { tlsFixture } from '../http/tls-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n${'22'.repeat(32)} /usr/lib/libc.so.6\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
const NODE = node({}).uuid;
/** An enrolment's metadata naming the test node, as the driver writes it. */
const OURS = JSON.stringify({ node: NODE });
/** The EK check a driver built without options runs (its `ekCheck` default). */
const DRIVER_EK_CHECK = { ekCheck: 'require', extraEkCaDirs: [] } as const;
// A status deadline of 10 s: the verdicts and failure histories here come within it unless the host
// stalls, and a 1 s one gave up on them when it did. The unreachable-verifier test waits for the deadline
// itself and keeps 1 s (`DEADLINE_CONFIG`).
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 10, statusPollIntervalSeconds: 1 } });
const DEADLINE_CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });

describe('keylime driver: KeylimeAttestation', function () {
  const fixture = useFakeKeylime('ironlime-driver-', ALLOWLIST, AGENT);
  const { fake, info } = fixture;

  const task = (driverInfo: DriverInfo = info, signal?: AbortSignal, config = CONFIG): Task => createTask(node(driverInfo), config, signal === undefined ? {} : { signal });

  /** Makes the fake verifier hold the agent as enrolled by the driver with `driverInfo`'s documents. */
  function enrolledWith(driverInfo: DriverInfo, allowlist = ALLOWLIST): void {
    const settings = parseKeylimeDriverInfo(driverInfo, CONFIG.keylime, { locatorAvailable: false });
    const { fingerprint } = buildEnrolmentPolicy(settings, { policy: Buffer.from(allowlist), excludelist: undefined, mbRefstate: undefined }, DRIVER_EK_CHECK);
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 3, attestation_count: 4, meta_data: JSON.stringify({ ironlime_policy_fingerprint: fingerprint, node: NODE }) },
    ]);
  }

  it('documents every driver_info field', function () {
    expect(new KeylimeAttestation().getProperties()).to.deep.equal({ ...REQUIRED_PROPERTIES, ...OPTIONAL_PROPERTIES });
  });

  it('validates without touching the network, reporting every missing field', function () {
    const driver = new KeylimeAttestation();
    driver.validate(task());
    const error = (() => {
      try {
        driver.validate(task({ keylime_agent_port: 9002 }));
      } catch (caught) {
        return caught as MissingParameterValue;
      }
      throw new Error('expected MissingParameterValue');
    })();
    expect(error).to.be.instanceOf(MissingParameterValue);
    expect(error.fields).to.deep.equal([
      'keylime_allowlist',
      'keylime_allowlist_checksum',
      'keylime_agent_uuid',
      'keylime_verifier_url',
      'keylime_registrar_url',
      'keylime_tls_cert',
      'keylime_tls_key',
    ]);
    expect(fake.requests).to.deep.equal([]);
  });

  it('stops startAttestation on a checksum mismatch before any request is sent', async function () {
    const wrong = 'ee'.repeat(32);
    fake.routes.set('GET /policies/allowlist.txt', () => ALLOWLIST);
    for (const allowlist of [path.join(fixture.dir, 'allowlist.txt'), `${fake.url}/policies/allowlist.txt`]) {
      const error = await rejection(new KeylimeAttestation().startAttestation(task({ ...info, keylime_allowlist: allowlist, keylime_allowlist_checksum: wrong })));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).field).to.equal('driver_info.keylime_allowlist_checksum');
      expect(error.message).to.contain(`not the expected ${wrong}; nothing was sent to the attestation service`);
    }
    // Only the allowlist download itself reached the server: no verifier or registrar call.
    expect(fake.requests).to.deep.equal(['GET /policies/allowlist.txt']);
  });

  it('takes the allowlist from a local file and is idempotent when enrolled with the same policy', async function () {
    enrolledWith(info);
    await new KeylimeAttestation().startAttestation(task());
    expect(fake.requests).to.deep.equal(['GET /version', `GET /v2.1/agents/${AGENT}`]);
  });

  it('takes the allowlist from an http URL', async function () {
    fake.routes.set('GET /policies/allowlist.txt', () => ALLOWLIST);
    const viaUrl = { ...info, keylime_allowlist: `${fake.url}/policies/allowlist.txt` };
    enrolledWith(viaUrl);
    await new KeylimeAttestation().startAttestation(task(viaUrl));
    expect(fake.requests).to.deep.equal(['GET /policies/allowlist.txt', 'GET /version', `GET /v2.1/agents/${AGENT}`]);
  });

  it('speaks the highest API version it shares with the verifier: 2.5 with Keylime 7.14, 2.6 with ironlime', async function () {
    for (const [supported, expected] of [
      [['1.0', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5'], '2.5'],
      [['2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '2.6'], '2.6'],
    ] as const) {
      fake.requests.length = 0;
      fake.routes.set('GET /version', () => [200, { current_version: supported.at(-1), supported_versions: supported }]);
      fake.routes.set(`GET /v${expected}/agents/${AGENT}`, () => [200, { operational_state: 3, attestation_count: 1, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: OURS }]);
      await new KeylimeAttestation().validateSecurityStatus(task());
      expect(fake.requests).to.deep.equal(['GET /version', `GET /v${expected}/agents/${AGENT}`]);
    }
  });

  it('re-enrols an agent enrolled with another policy, removing it first', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 3, attestation_count: 1, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: OURS }]);
    fake.routes.set(`DELETE /v2.1/agents/${AGENT}`, () => [200, {}]);
    const error = await rejection(new KeylimeAttestation().startAttestation(task()));
    // The fake registrar knows no agent: after the removal the identity check finds nothing.
    expect(error).to.be.instanceOf(AttestationFailed);
    expect(error.message).to.equal(`attestation failed: agent ${AGENT} is not registered (or not activated) at the registrar`);
    expect(fake.requests).to.deep.equal(['GET /version', `GET /v2.1/agents/${AGENT}`, `DELETE /v2.1/agents/${AGENT}`, `GET /registrar/v2.1/agents/${AGENT}`]);
  });

  it('reports an unreachable verifier as AttestationServiceUnavailable', async function () {
    const closed = await closedPort();
    const unreachable = { ...info, keylime_verifier_url: `http://127.0.0.1:${closed}` };
    const start = await rejection(new KeylimeAttestation().startAttestation(task(unreachable)));
    expect(start).to.be.instanceOf(AttestationServiceUnavailable);
    expect((start as AttestationServiceUnavailable).code).to.equal('ERR_ATTESTATION_SERVICE_UNAVAILABLE');
    expect(start.message).to.match(new RegExp(`^attestation service unavailable: agent ${AGENT}: http://127\\.0\\.0\\.1:${closed}/version: unreachable: ECONNREFUSED`));
    const status = await rejection(new KeylimeAttestation().validateSecurityStatus(task(unreachable, undefined, DEADLINE_CONFIG)));
    expect(status).to.be.instanceOf(AttestationServiceUnavailable);
    expect(status.message).to.contain('no verdict from the verifier within 1 s (last: ');
    const unregister = await rejection(new KeylimeAttestation().unregisterNode(task(unreachable)));
    expect(unregister).to.be.instanceOf(AttestationServiceUnavailable);
  });

  it('resolves validateSecurityStatus once the agent passed an attestation, and waits while pending', async function () {
    let reads = 0;
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => {
      reads += 1;
      return [200, { operational_state: reads < 2 ? 1 : 3, attestation_count: reads < 2 ? 0 : 1, last_successful_attestation: reads < 2 ? 0 : Math.floor(Date.now() / 1000), meta_data: OURS }];
    });
    await new KeylimeAttestation().validateSecurityStatus(task(info));
    expect(reads).to.equal(2);
  });

  it('rejects validateSecurityStatus with the verifier reason, last_event_id and history', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [
      200,
      { operational_state: 9, attestation_count: 3, last_event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_level: 6, meta_data: OURS },
    ]);
    fake.routes.set(`GET /v2.1/agents/${AGENT}/history`, () => [
      200,
      {
        history: [
          { outcome: 'fail', failures: [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', context: { message: 'File not found in allowlist: /tmp/evil' } }] },
          { outcome: 'pass', failures: [] },
        ],
      },
    ]);
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
    expect(error).to.be.instanceOf(AttestationFailed);
    const failed = error as AttestationFailed;
    expect(failed.eventIds).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(failed.reasons).to.deep.equal([
      'the verifier marked the agent "Invalid Quote" (last event ima.validation.ima-ng.not_in_allowlist, severity level 6)',
      'ima.validation.ima-ng.not_in_allowlist: File not found in allowlist: /tmp/evil',
    ]);
  });

  it('keeps at most 20 failures of a history that lists thousands (no megabytes of reasons stored on the node)', async function () {
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => [200, { operational_state: 9, attestation_count: 3, meta_data: OURS }]);
    const failures = Array.from({ length: 5000 }, (_, i) => ({ event_id: `ima.validation.failure-${i}`, context: { message: `failure ${i}` } }));
    fake.routes.set(`GET /v2.1/agents/${AGENT}/history`, () => [200, { history: [{ outcome: 'fail', failures }, { outcome: 'fail', failures }] }]);
    const failed = (await rejection(new KeylimeAttestation().validateSecurityStatus(task()))) as AttestationFailed;
    expect(failed).to.be.instanceOf(AttestationFailed);
    expect(failed.eventIds).to.have.length(20);
    expect(failed.reasons).to.have.length(21);
    expect(failed.reasons[1]).to.equal('ima.validation.failure-0: failure 0');
  });

  it('fails validateSecurityStatus for an agent the verifier does not know', async function () {
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task()));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect(error.message).to.equal(`attestation failed: agent ${AGENT} is not enrolled with the verifier`);
  });

  it('unregisters idempotently, waiting through the termination handshake', async function () {
    let gets = 0;
    fake.routes.set(`DELETE /v2.1/agents/${AGENT}`, () => [202, {}]);
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () => (++gets < 3 ? [200, { operational_state: 8, meta_data: OURS }] : [404, {}]));
    const driver = new KeylimeAttestation();
    await driver.unregisterNode(task());
    expect(fake.requests).to.deep.equal(['GET /version', `GET /v2.1/agents/${AGENT}`, `DELETE /v2.1/agents/${AGENT}`, `GET /v2.1/agents/${AGENT}`, `GET /v2.1/agents/${AGENT}`]);
    fake.routes.clear();
    await driver.unregisterNode(task());
    const { keylime_agent_uuid: _, ...unlocated } = info;
    await new KeylimeAttestation({ agentLocator: async () => undefined }).unregisterNode(task(unlocated));
  });

  describe('agent locator', function () {
    class RecordingStore implements DriverInfoWriter {
      readonly updates: DriverInfo[] = [];
      async updateNode(_uuid: string, changes: { readonly driverInfo: DriverInfo }): Promise<Node> {
        this.updates.push(changes.driverInfo);
        return node(changes.driverInfo);
      }
    }

    it('stores the location the ramdisk reports with locateAgent', async function () {
      const nodes = new RecordingStore();
      const driver = new KeylimeAttestation({ nodes });
      const withoutUuid = { ...info, keylime_agent_uuid: undefined, keylime_agent_address: '10.9.9.9' };
      const updated = await driver.locateAgent(task(withoutUuid), { uuid: AGENT, port: 9003 });
      expect(updated.driverInfo).to.include({ keylime_agent_uuid: AGENT, keylime_agent_port: 9003 });
      expect(updated.driverInfo).to.not.have.property('keylime_agent_address');
      const bad = await rejection(driver.locateAgent(task(), { uuid: 'a b' } as AgentLocation));
      expect(bad).to.be.instanceOf(InvalidParameterValue);
      expect(bad.message).to.equal('agent location uuid: must be an agent id of letters, digits, "_", "." and "-" (at most 80)');
      // Ids the driver_info parser and the services refuse: "." and ".." are path segments a URL drops
      // (GET /agents/. asked the verifier's agent list), `__proto__` reaches an object's prototype. Stored, the
      // first made every later validate of the node fail.
      for (const uuid of ['.', '..', '__proto__', 'constructor']) {
        const refused = await rejection(driver.locateAgent(task(), { uuid }));
        expect(refused, uuid).to.be.instanceOf(InvalidParameterValue);
        expect(refused.message, uuid).to.equal('agent location uuid: must be an agent id of letters, digits, "_", "." and "-" (at most 80)');
      }
      // A ramdisk's `ip:port` as the address would make `https://[10.0.0.1:9002]:9003`, a URL nothing can parse.
      const withPort = await rejection(driver.locateAgent(task(), { uuid: AGENT, address: '10.0.0.1:9002', port: 9003 }));
      expect(withPort).to.be.instanceOf(InvalidParameterValue);
      expect(withPort.message).to.equal('agent location address: must be an IP address or a host name');
      expect(nodes.updates).to.have.length(1);
      const noStore = await rejection(new KeylimeAttestation().locateAgent(task(), { uuid: AGENT }));
      expect(noStore.message).to.equal('keylime driver options is missing required field(s): nodes');
    });

    it('asks the locator in startAttestation when driver_info has no uuid, and stores the answer', async function () {
      const nodes = new RecordingStore();
      const asked: string[] = [];
      const driver = new KeylimeAttestation({
        nodes,
        agentLocator: async (t) => {
          asked.push(t.node.uuid);
          return { uuid: AGENT, address: '127.0.0.1', port: 9002 };
        },
      });
      const withoutUuid: Record<string, unknown> = { ...info };
      delete withoutUuid['keylime_agent_uuid'];
      driver.validate(task(withoutUuid));
      enrolledWith(info);
      await driver.startAttestation(task(withoutUuid));
      expect(asked).to.deep.equal([node({}).uuid]);
      expect(nodes.updates).to.have.length(1);
      expect(nodes.updates[0]).to.include({ keylime_agent_uuid: AGENT, keylime_agent_address: '127.0.0.1', keylime_agent_port: 9002 });
      expect(fake.requests).to.deep.equal(['GET /version', `GET /v2.1/agents/${AGENT}`]);
      const silent = new KeylimeAttestation({ agentLocator: async () => undefined });
      const error = await rejection(silent.startAttestation(task(withoutUuid)));
      expect(error).to.be.instanceOf(MissingParameterValue);
      expect(error.message).to.equal('driver_info is missing required field(s): keylime_agent_uuid');
    });
  });

  it('names a TLS file that cannot be read', async function () {
    const https = { ...info, keylime_verifier_url: 'https://127.0.0.1:1', keylime_registrar_url: 'https://127.0.0.1:1', keylime_tls_ca: path.join(fixture.dir, 'missing-ca.crt') };
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task(https)));
    expect(error).to.be.instanceOf(InvalidParameterValue);
    expect(error.message).to.equal(`driver_info.keylime_tls_ca: cannot read ${path.join(fixture.dir, 'missing-ca.crt')}: ENOENT`);
  });

  it('names a TLS client key that does not exist', async function () {
    const key = path.join(fixture.dir, 'missing-client.key');
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task({ ...info, keylime_tls_key: key })));
    expect(error).to.be.instanceOf(InvalidParameterValue);
    expect(error.message).to.equal(`driver_info.keylime_tls_key: cannot read ${key}: no such file`);
  });

  it('names a TLS client key that holds a certificate, or the key of another certificate, before sending anything (no OpenSSL error from the first connection)', async function () {
    const tls = tlsFixture();
    const file = (name: string, text: string) => {
      writeFileSync(path.join(fixture.dir, name), text, { mode: 0o600 });
      return path.join(fixture.dir, name);
    };
    const cert = file('real-client.crt', tls.client.certPem);
    const https = { ...info, keylime_verifier_url: 'https://127.0.0.1:1', keylime_registrar_url: 'https://127.0.0.1:1', keylime_tls_cert: cert };
    for (const [key, said] of [
      [file('cert-as-key.pem', tls.client.certPem), 'holds no readable PEM private key'],
      [file('other-client.key', tls.foreignClient.keyPem), 'is not the private key of the client certificate'],
    ] as const) {
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task({ ...https, keylime_tls_key: key })));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect(error.message.startsWith(`driver_info.keylime_tls_key: ${key} ${said}`), error.message).to.equal(true);
    }
  });

  it('refuses a TLS client key its group or others may read, naming the setting', async function () {
    const key = path.join(fixture.dir, 'shared-client.key');
    writeFileSync(key, '-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n', { mode: 0o644 });
    chmodSync(key, 0o644);
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task({ ...info, keylime_tls_key: key })));
    expect(error).to.be.instanceOf(InvalidParameterValue);
    expect(error.message).to.equal(`driver_info.keylime_tls_key: ${key} holds a private key but its permissions 0644 let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`);
    expect(fixture.fake.requests, 'nothing was sent').to.deep.equal([]);
  });
});

