import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { hostIdHash, parseMacAddress, parseSystemUuid } from '../../lib/identity/host-id.js';
import { HOST_SECRET_FILE, loadOrCreateHostSecret } from '../../lib/identity/host-secret-file.js';
import { hostProofKey, hostSecretProof, newHostSecret, verifyHostSecretProof } from '../../lib/identity/host-secret-proof.js';
import { readHostId } from '../../lib/identity/read-host-id.js';
import { decideTrustGate } from '../../lib/identity/trust-gate.js';
import { trustLevelAtLeast, trustLevelOfMode, TRUST_LEVELS } from '../../lib/identity/trust-level.js';

describe('identity without a TPM', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-identity-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('orders trust levels and maps agent modes to them', () => {
    expect(TRUST_LEVELS).to.deep.equal(['id-only', 'id-secret', 'emulated-tpm', 'hardware-tpm']);
    expect(trustLevelOfMode('tpm')).to.equal('hardware-tpm');
    expect(trustLevelAtLeast('emulated-tpm', 'id-secret')).to.equal(true);
    expect(trustLevelAtLeast('id-secret', 'emulated-tpm')).to.equal(false);
  });

  it('accepts real SMBIOS UUIDs and refuses empty and placeholder ones', () => {
    expect(parseSystemUuid('4C4C4544-0042-3510-8052-B4C04F4E4B32\n')).to.deep.equal({ kind: 'sys-uuid', value: '4c4c4544-0042-3510-8052-b4c04f4e4b32' });
    for (const bad of ['', '  ', 'Not Settable', 'Not Present', 'Unspecified', 'None', 'To Be Filled By O.E.M.', '00000000-0000-0000-0000-000000000000', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '03000200-0400-0500-0006-000700080009', 'abc']) {
      expect(() => parseSystemUuid(bad), bad).to.throw(InvalidParameterValue);
    }
  });

  it('accepts unicast MACs and refuses zero, broadcast and multicast ones', () => {
    expect(parseMacAddress('52-54-00-AB-CD-EF').value).to.equal('52:54:00:ab:cd:ef');
    for (const bad of ['00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '52:54:00', 'zz:zz:zz:zz:zz:zz']) {
      expect(() => parseMacAddress(bad), bad).to.throw(InvalidParameterValue);
    }
    expect(hostIdHash({ kind: 'mac', value: '52:54:00:ab:cd:ef' })).to.not.equal(hostIdHash({ kind: 'sys-uuid', value: '52:54:00:ab:cd:ef' }));
  });

  it('reads the MAC of the default-route interface, else the lowest physical one, and the SMBIOS UUID', () => {
    const put = (file: string, text: string): void => {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), text);
    };
    put('sys/class/net/lo/address', '00:00:00:00:00:00\n');
    put('sys/devices/virtual/net/lo/x', '');
    put('sys/class/net/eno1/address', '52:54:00:00:00:01\n');
    put('sys/class/net/eno2/address', '52:54:00:00:00:02\n');
    expect(readHostId('mac', dir).value).to.equal('52:54:00:00:00:01');
    put('proc/net/route', 'Iface\tDestination\tGateway\neno2\t00000000\t0102A8C0\n');
    expect(readHostId('mac', dir).value).to.equal('52:54:00:00:00:02');
    expect(() => readHostId('sys-uuid', dir)).to.throw(InvalidParameterValue, /product_uuid does not exist/);
    put('sys/class/dmi/id/product_uuid', 'Not Settable\n');
    expect(() => readHostId('sys-uuid', dir)).to.throw(InvalidParameterValue, /not set/);
  });

  it('a host secret is made once (0600) and proves possession by HMAC over a nonce; another secret, another id or an old nonce fails', () => {
    const first = loadOrCreateHostSecret(dir);
    expect(first.created).to.equal(true);
    expect(statSync(path.join(dir, HOST_SECRET_FILE)).mode & 0o777).to.equal(0o600);
    const again = loadOrCreateHostSecret(dir);
    expect(again).to.deep.equal({ secret: first.secret, created: false });

    const idHash = hostIdHash({ kind: 'mac', value: '52:54:00:00:00:01' });
    const key = hostProofKey(first.secret, idHash);
    const proof = hostSecretProof(key, 'agent-1', 'nonce-1');
    expect(verifyHostSecretProof(key, 'agent-1', 'nonce-1', proof)).to.equal(true);
    expect(verifyHostSecretProof(key, 'agent-1', 'nonce-2', proof), 'replayed for a new nonce').to.equal(false);
    expect(verifyHostSecretProof(key, 'agent-2', 'nonce-1', proof), 'another agent id').to.equal(false);
    expect(verifyHostSecretProof(hostProofKey(newHostSecret(), idHash), 'agent-1', 'nonce-1', proof), "another host's secret").to.equal(false);
    expect(verifyHostSecretProof(key, 'agent-1', 'nonce-1', 'not hex')).to.equal(false);

    writeFileSync(path.join(dir, HOST_SECRET_FILE), 'short\n');
    expect(() => loadOrCreateHostSecret(dir)).to.throw(InvalidParameterValue, /must hold 64 hex digits/);
  });

  it('the gate: node minimum over configuration over default (clean any identity, deploy a hardware TPM)', () => {
    expect(decideTrustGate({ step: 'clean', nodeLevel: 'id-secret' })).to.deep.equal({ allowed: true, minimum: 'id-only', source: 'default' });
    const refused = decideTrustGate({ step: 'deploy', nodeLevel: 'id-secret' });
    expect(refused).to.include({ allowed: false, minimum: 'hardware-tpm', source: 'default' });
    expect(refused.allowed === false && refused.reason).to.equal('deploy needs trust level hardware-tpm; this node is id-secret');
    expect(decideTrustGate({ step: 'deploy', nodeLevel: 'emulated-tpm', configuredMinimum: 'emulated-tpm' }).allowed).to.equal(true);
    expect(decideTrustGate({ step: 'deploy', nodeLevel: 'id-secret', configuredMinimum: 'emulated-tpm', nodeMinimum: 'id-secret' })).to.include({ allowed: true, source: 'node' });
    expect(decideTrustGate({ step: 'clean', nodeLevel: 'emulated-tpm', nodeMinimum: 'hardware-tpm' }).allowed).to.equal(false);
  });
});
