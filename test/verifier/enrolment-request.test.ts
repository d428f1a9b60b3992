import { expect } from 'chai';
import { buildEnrolmentBody } from '../../lib/tenant/enrolment-request.js';
import type { RegisteredAgent } from '../../lib/tenant/registrar-agents.js';
import { InvalidParameterValue } from '../../interfaces/errors.js';

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

describe('tenant enrolment body (Keylime do_cvadd)', function () {
  it('computes the mask: policy PCRs, plus 10 with a runtime policy, plus the measured-boot PCRs with a refstate', function () {
    const plain = buildEnrolmentBody(target, { tpmPolicy: { '15': ['00'], '23': 'ff' } });
    expect(JSON.parse(plain.tpm_policy)).to.deep.equal({ '15': ['00'], '23': ['ff'], mask: '0x808000' });
    expect(plain.runtime_policy).to.equal('');
    expect(plain.ak_tpm).to.equal('AQID');
    expect(plain).to.include({ mb_policy: null, mb_policy_name: '', metadata: '{}', supported_version: '2.6', cloudagent_port: 9002 });
    const withNames = buildEnrolmentBody(target, { runtimePolicyName: 'shared', mbPolicyName: 'boot' });
    // 0–9, 10, 11–15 = 0xffff
    expect(JSON.parse(withNames.tpm_policy)).to.deep.equal({ mask: '0xffff' });
    expect(withNames).to.include({ runtime_policy_name: 'shared', mb_policy_name: 'boot' });
  });

  it('converts a flat allowlist and exclude list into a runtime policy, base64-encoded', function () {
    const body = buildEnrolmentBody(target, { runtimePolicy: `${'a'.repeat(64)}  /usr/bin/bash\n`, excludeList: '^/tmp/\n' });
    const policy = JSON.parse(Buffer.from(body.runtime_policy, 'base64').toString('utf8')) as { digests: object; excludes: string[] };
    expect(policy.digests).to.deep.equal({ '/usr/bin/bash': ['a'.repeat(64)] });
    expect(policy.excludes).to.deep.equal(['^/tmp/']);
    expect(JSON.parse(body.tpm_policy)).to.deep.equal({ mask: '0x400' });
  });

  it('refuses PCR 10/16 policies, bad refstates and agents without an mTLS certificate before sending anything', function () {
    expect(() => buildEnrolmentBody(target, { tpmPolicy: { '16': ['00'] } })).to.throw(InvalidParameterValue, 'tpm_policy.16: PCR 16 binds the agent key');
    expect(() => buildEnrolmentBody(target, { mbPolicy: '{"kernels": 1}' })).to.throw(/scrtm_and_bios|kernels/);
    expect(() => buildEnrolmentBody({ ...target, agent: { ...agent, mtlsCert: null } }, {})).to.throw(InvalidParameterValue, 'registered no mTLS certificate');
  });
});
