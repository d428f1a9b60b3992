import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { driverEnrolmentBody } from '../../drivers/keylime/agent-enrolment.js';
import { buildEnrolmentPolicy } from '../../drivers/keylime/enrolment-policy.js';
import { parseKeylimeDriverInfo } from '../../drivers/keylime/keylime-driver-info.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { agentContact, buildEnrolmentBody, checkEnrolmentPolicies } from '../../lib/tenant/enrolment-request.js';
import type { RegisteredAgent } from '../../lib/tenant/registrar-agents.js';
import { MEASUREDBOOT_PCRS } from '../../lib/tpm/keylime-profile.js';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/paths.js';
import { vectorText } from '../ima/ima-vectors.js';

const agent: RegisteredAgent = {
  agentId: 'a1',
  ekPublic: new Uint8Array([1]),
  ekCertificate: null,
  akPublic: new Uint8Array([1, 2, 3]),
  mtlsCert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
  ip: '10.0.0.5',
  port: 9002,
  regcount: 1,
};
const target = { agent, ip: '10.0.0.5', port: 9002, v: null, supportedVersion: '2.6' };
const body = (policies: Parameters<typeof checkEnrolmentPolicies>[0]) => buildEnrolmentBody(target, checkEnrolmentPolicies(policies));
const maskOf = (tpmPolicy: string): string => (JSON.parse(tpmPolicy) as { mask: string }).mask;

/** Every measured-boot PCR as a mask: 0–9 and 11–15. */
const MB_MASK = MEASUREDBOOT_PCRS.reduce((mask, pcr) => mask | (1 << pcr), 0);
const JSON_POLICY_WITHOUT_GENERATOR = JSON.stringify({
  meta: { version: 1 },
  digests: { '/usr/bin/bash': ['a'.repeat(64)] },
  excludes: [],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
});

describe('enrolment request: the one builder of tenant and driver (Keylime do_cvadd)', function () {
  it('computes the mask: policy PCRs, plus 10 with a runtime policy, plus the measured-boot PCRs with a refstate', function () {
    const plain = body({ tpmPolicy: { '17': ['00'], '23': 'ff' } });
    expect(JSON.parse(plain.tpm_policy)).to.deep.equal({ '17': ['00'], '23': ['ff'], mask: '0x820000' });
    expect(plain.runtime_policy).to.equal('');
    expect(plain.ak_tpm).to.equal('AQID');
    expect(plain).to.include({ mb_policy: null, mb_policy_name: '', metadata: '{}', supported_version: '2.6', cloudagent_port: 9002 });
    const withNames = body({ runtimePolicyName: 'shared', mbPolicyName: 'boot' });
    // 0–9, 10, 11–15 = 0xffff
    expect(JSON.parse(withNames.tpm_policy)).to.deep.equal({ mask: '0xffff' });
    expect(withNames).to.include({ runtime_policy_name: 'shared', mb_policy_name: 'boot' });
  });

  it('adds PCR 10 for every runtime policy, whatever it holds (Keylime process_policy)', function () {
    // A JSON policy without meta.generator (Unknown), an empty flat allowlist and IMA keys alone:
    // the driver used to leave PCR 10 out for the first two, so the verifier never checked the list.
    expect(maskOf(body({ runtimePolicy: JSON_POLICY_WITHOUT_GENERATOR }).tpm_policy)).to.equal('0x400');
    expect(maskOf(body({ runtimePolicy: '' }).tpm_policy)).to.equal('0x400');
    expect(maskOf(body({ imaSignVerificationKeys: '{"version": 1, "keyids": [], "pubkeys": []}' }).tpm_policy)).to.equal('0x400');
    expect(maskOf(body({}).tpm_policy)).to.equal('0x0');
  });

  it('converts a flat allowlist and exclude list into a runtime policy, base64-encoded', function () {
    const converted = body({ runtimePolicy: `${'a'.repeat(64)}  /usr/bin/bash\n`, excludeList: '^/tmp/\n' });
    const policy = JSON.parse(Buffer.from(converted.runtime_policy, 'base64').toString('utf8')) as { digests: object; excludes: string[] };
    expect(policy.digests).to.deep.equal({ '/usr/bin/bash': ['a'.repeat(64)] });
    expect(policy.excludes).to.deep.equal(['^/tmp/']);
    expect(JSON.parse(converted.tpm_policy)).to.deep.equal({ mask: '0x400' });
  });

  it('refuses PCR 10/16 policies (a boot PCR beside a refstate is kept), bad refstates and agents without an mTLS certificate', function () {
    expect(() => checkEnrolmentPolicies({ tpmPolicy: { '16': ['00'] } })).to.throw(InvalidParameterValue, 'tpm_policy.16: PCR 16 binds the agent key');
    expect(() => checkEnrolmentPolicies({ tpmPolicy: { '10': ['00'] } })).to.throw(InvalidParameterValue, 'tpm_policy.10: PCR 10 is checked by IMA replay');
    expect(JSON.parse(body({ tpmPolicy: { '15': ['00'] }, mbPolicyName: 'boot' }).tpm_policy)).to.deep.equal({ '15': ['00'], mask: '0xfbff' });
    expect(() => checkEnrolmentPolicies({ mbPolicy: '{"kernels": 1}' })).to.throw(/scrtm_and_bios|kernels/);
    expect(() => buildEnrolmentBody({ ...target, agent: { ...agent, mtlsCert: null } }, checkEnrolmentPolicies({}))).to.throw(
      InvalidParameterValue,
      'registered no mTLS certificate',
    );
  });

  it('refuses an exclude list or a policy key without a runtime policy text: nothing would apply them', function () {
    // They were dropped without a word: `--runtime-policy-name base --excludelist ex.txt` enrolled `base` without the excludes.
    for (const given of [{ runtimePolicyName: 'base' }, {}]) {
      expect(() => checkEnrolmentPolicies({ ...given, excludeList: '^/tmp/\n' })).to.throw(InvalidParameterValue, 'exclude_list: applies only to a runtime policy given as text');
      expect(() => checkEnrolmentPolicies({ ...given, runtimePolicyKey: 'x' })).to.throw(InvalidParameterValue, 'runtime_policy_key: verifies only a runtime policy given as text');
    }
  });

  it('takes an empty exclude list with a stored policy, as beside a signed one: it excludes nothing', function () {
    // `--excludelist /dev/null` in a script that always passes one was refused with a stored policy only.
    expect(checkEnrolmentPolicies({ runtimePolicyName: 'base', excludeList: ' \n' }).runtimePolicyName).to.equal('base');
  });

  it('refuses an exclude list beside a signed runtime policy: it cannot be added without breaking the signature', function () {
    const signed = vectorText('keylime', 'runtime_policy', 'runtime-policy-test-signed.json');
    const key = vectorText('keylime', 'runtime_policy', 'runtime-policy-pubkey.pub');
    // The envelope was sent as signed, and the exclude list dropped without a word.
    expect(() => checkEnrolmentPolicies({ runtimePolicy: signed, runtimePolicyKey: key, excludeList: '^/tmp/\n' })).to.throw(
      InvalidParameterValue,
      'exclude_list: cannot be added to a signed runtime policy',
    );
    expect(checkEnrolmentPolicies({ runtimePolicy: signed, runtimePolicyKey: key }).runtimePolicyFormat).to.equal('signed-runtime-policy');
  });

  it('takes the contact address given, the rest from the registrar record, and refuses none', function () {
    expect(agentContact(agent)).to.deep.equal({ ip: '10.0.0.5', port: 9002 });
    expect(agentContact(agent, { ip: '[fd00::5]' })).to.deep.equal({ ip: 'fd00::5', port: 9002 });
    expect(agentContact(agent, { port: 9003 })).to.deep.equal({ ip: '10.0.0.5', port: 9003 });
    expect(() => agentContact({ ...agent, ip: null })).to.throw(InvalidParameterValue, 'a1: no contact address was given or registered');
  });

  it('tenant and driver build the same request for the same documents', function () {
    const allowlist = `${'a'.repeat(64)}  /usr/bin/bash\n${'b'.repeat(64)}  /usr/lib/libc.so.6\n`;
    const excludes = '^/tmp/\n^/var/log/\n';
    const refstate = JSON.stringify(createRefstate(parseEventLog(new Uint8Array(readFileSync(path.join(REPO_ROOT, 'fixtures', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin')))), { withoutSecureBoot: true }));
    const tpmPolicy = { '17': ['00'.repeat(32)], '23': ['ff'.repeat(32)] };
    const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
    const settings = parseKeylimeDriverInfo(
      {
        keylime_allowlist: '/policies/allowlist.txt',
        keylime_allowlist_checksum: sha(allowlist),
        keylime_excludelist: '/policies/excludes.txt',
        keylime_mb_refstate: '/policies/refstate.json',
        keylime_tpm_policy: JSON.stringify(tpmPolicy),
        keylime_agent_uuid: agent.agentId,
        keylime_verifier_url: 'https://verifier.example:8881',
        keylime_registrar_url: 'https://registrar.example:8891',
        keylime_tls_cert: '/etc/keylime/client.crt',
        keylime_tls_key: '/etc/keylime/client.key',
      },
      buildConfig({ enabledAttestationInterfaces: ['keylime'] }).keylime,
      { locatorAvailable: false },
    );
    const policy = buildEnrolmentPolicy(settings, { policy: Buffer.from(allowlist), excludelist: Buffer.from(excludes), mbRefstate: Buffer.from(refstate) }, { ekCheck: 'require', extraEkCaDirs: [] });
    const fromDriver = driverEnrolmentBody(agent, { uuid: agent.agentId }, policy, 'node-1');
    const metadata = JSON.parse(fromDriver.metadata) as Record<string, unknown>;
    expect(metadata).to.deep.equal({ ironlime_policy_fingerprint: policy.fingerprint, node: 'node-1' });
    // `ironlime tenant add --allowlist … --excludelist … --mb-policy … --tpm-policy …`, with the driver's metadata.
    const fromTenant = buildEnrolmentBody(
      { agent, ...agentContact(agent), v: null, supportedVersion: '2.6', metadata },
      checkEnrolmentPolicies({ runtimePolicy: allowlist, excludeList: excludes, mbPolicy: refstate, tpmPolicy: JSON.stringify(tpmPolicy) }),
    );
    // A converted flat allowlist carries the time of conversion (`meta.timestamp`), as Keylime's does.
    const untimed = (sent: typeof fromDriver): unknown => {
      const policy = JSON.parse(Buffer.from(sent.runtime_policy, 'base64').toString('utf8')) as { meta: Record<string, unknown> };
      delete policy.meta['timestamp'];
      return { ...sent, runtime_policy: policy };
    };
    expect(untimed(fromDriver)).to.deep.equal(untimed(fromTenant));
    expect(maskOf(fromDriver.tpm_policy)).to.equal(`0x${(MB_MASK | (1 << 10) | (1 << 17) | (1 << 23)).toString(16)}`);
  });
});
