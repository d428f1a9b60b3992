import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationFailed } from '../../interfaces/errors.js';
import type { DriverInfo } from '../../interfaces/node.js';
import type { Task } from '../../interfaces/task.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { TenantEkCheckMode } from '../../lib/tenant/ek-certificate-check.js';
import { buildEnrolmentPolicy } from '../../drivers/keylime/enrolment-policy.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { parseKeylimeDriverInfo } from '../../drivers/keylime/keylime-driver-info.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00011';
const NODE = node({}).uuid;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

// A Keylime registrar states no trust_level: the driver's own EK check decides hardware-tpm.
describe('keylime driver: the EK check behind hardware-tpm', function () {
  this.timeout(30_000);
  const fixture = useFakeKeylime('ironlime-ek-level-', ALLOWLIST, AGENT);
  const { fake, info } = fixture;
  let ekCaDir: string;
  let ekPublic: Uint8Array;
  let ekCertificate: Uint8Array;
  let akPublic: Uint8Array;

  before(async function () {
    const ekCa = SoftwareEkCa.create({ commonName: 'driver test EK CA' });
    const tpm = await createSoftwareTpm({ issueEkCertificate: (key) => ekCa.issue(key) });
    try {
      const ek = await tpm.ensureEk();
      ekPublic = ek.ekPublic;
      ekCertificate = ek.ekCertificate!;
      akPublic = (await tpm.ensureAk('sha256')).akPublic;
    } finally {
      await tpm.close();
    }
    ekCaDir = path.join(fixture.dir, 'ek-ca');
    await mkdir(ekCaDir);
    await writeFile(path.join(ekCaDir, 'driver-test-ek-ca.pem'), ekCa.certificatePem);
  });

  const task = (driverInfo: DriverInfo = info): Task => createTask(node(driverInfo), CONFIG);

  /** Keylime's registrar record of the agent: no trust_level; `ekcert` as given. */
  function registered(ekcert: Uint8Array | null): void {
    fake.routes.set(`GET /registrar/v2.1/agents/${AGENT}`, () => [
      200,
      { agent_id: AGENT, ek_tpm: b64(ekPublic), ekcert: ekcert === null ? null : b64(ekcert), aik_tpm: b64(akPublic), mtls_cert: null, ip: '127.0.0.1', port: 9002, regcount: 1 },
    ]);
  }

  it('rates an agent that registered no EK certificate emulated-tpm under ekCheck require', async function () {
    registered(null);
    expect(await new KeylimeAttestation({ ekCheck: 'require' }).trustLevel(task())).to.equal('emulated-tpm');
  });

  it('rates an agent hardware-tpm only when its EK certificate chains to a trusted CA', async function () {
    registered(ekCertificate);
    expect(await new KeylimeAttestation({ ekCheck: 'require', extraEkCaDirs: [ekCaDir] }).trustLevel(task())).to.equal('hardware-tpm');
    expect(await new KeylimeAttestation({ ekCheck: 'require' }).trustLevel(task())).to.equal('emulated-tpm');
    expect(await new KeylimeAttestation({ ekCheck: 'warn', extraEkCaDirs: [ekCaDir] }).trustLevel(task())).to.equal('emulated-tpm');
  });

  it("trusts the EK CA folders the config names (keylime.extraEkCaDirs), as the driver's own option", async function () {
    registered(ekCertificate);
    const configured = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1, extraEkCaDirs: [ekCaDir] } });
    expect(await new KeylimeAttestation({ ekCheck: 'require' }).trustLevel(createTask(node(info), configured))).to.equal('hardware-tpm');
  });

  it('checks again a node enrolled under ekCheck warn once the check is require', async function () {
    registered(null);
    const enrolledUnder = (ekCheck: TenantEkCheckMode): string =>
      buildEnrolmentPolicy(parseKeylimeDriverInfo(info, CONFIG.keylime, { locatorAvailable: false }), { policy: Buffer.from(ALLOWLIST), excludelist: undefined, mbRefstate: undefined }, { ekCheck, extraEkCaDirs: [] })
        .fingerprint;
    let enrolled = true;
    fake.routes.set(`GET /v2.1/agents/${AGENT}`, () =>
      enrolled
        ? [200, { operational_state: 3, attestation_status: 'PASS', attestation_count: 7, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: JSON.stringify({ ironlime_policy_fingerprint: enrolledUnder('warn'), node: NODE }) }]
        : [404, {}],
    );
    fake.routes.set(`DELETE /v2.1/agents/${AGENT}`, () => {
      enrolled = false;
      return [200, {}];
    });
    const error = await rejection(new KeylimeAttestation({ ekCheck: 'require' }).startAttestation(task()));
    expect(error).to.be.instanceOf(AttestationFailed);
    expect(error.message).to.equal(`attestation failed: identity check of agent ${AGENT} failed (ek-certificate): EK certificate of agent '${AGENT}': the agent registered no EK certificate`);
    expect(fake.requests).to.include(`DELETE /v2.1/agents/${AGENT}`);
  });

  it('gives enrolments under other EK checks or CA folders other fingerprints (folder order aside)', function () {
    const settings = parseKeylimeDriverInfo(info, CONFIG.keylime, { locatorAvailable: false });
    const documents = { policy: Buffer.from(ALLOWLIST), excludelist: undefined, mbRefstate: undefined };
    const fingerprint = (ekCheck: TenantEkCheckMode, extraEkCaDirs: readonly string[]): string => buildEnrolmentPolicy(settings, documents, { ekCheck, extraEkCaDirs }).fingerprint;
    expect(new Set([fingerprint('require', []), fingerprint('warn', []), fingerprint('off', []), fingerprint('require', ['/a'])]).size).to.equal(4);
    expect(fingerprint('require', ['/a', '/b'])).to.equal(fingerprint('require', ['/b', '/a']));
  });
});
