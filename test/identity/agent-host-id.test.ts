import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { agentHostId } from '../../lib/agent/agent-host-id.js';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';

describe('agent host id and identity settings', function () {
  let root: string;
  beforeEach(function () {
    root = mkdtempSync(path.join(tmpdir(), 'identity-host-'));
  });
  afterEach(function () {
    rmSync(root, { recursive: true, force: true });
  });

  function file(relative: string, text: string): void {
    mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    writeFileSync(path.join(root, relative), text);
  }

  it('takes a given id, else the SMBIOS UUID, else the MAC of the main interface', function () {
    expect(agentHostId('mac:02-AA-BB-CC-DD-EE', root)).to.deep.equal({ kind: 'mac', value: '02:aa:bb:cc:dd:ee' });
    file('sys/class/net/eth0/address', '52:54:00:12:34:56\n');
    expect(agentHostId(undefined, root)).to.deep.equal({ kind: 'mac', value: '52:54:00:12:34:56' });
    file('sys/class/dmi/id/product_uuid', '4C4C4544-0042-3510-8052-B4C04F4A4E32\n');
    expect(agentHostId(undefined, root)).to.deep.equal({ kind: 'sys-uuid', value: '4c4c4544-0042-3510-8052-b4c04f4a4e32' });
    expect(agentHostId('mac', root).kind).to.equal('mac');
  });

  it('refuses a placeholder UUID, a multicast MAC, or a machine with no usable id, as InvalidConfig', function () {
    for (const setting of ['sys-uuid:03000200-0400-0500-0006-000700080009', 'mac:01:00:5e:00:00:01', 'sys-uuid', undefined]) {
      let error: unknown;
      try {
        agentHostId(setting, root);
      } catch (caught) {
        error = caught;
      }
      expect(error, String(setting)).to.be.instanceOf(InvalidConfig);
    }
  });

  it('accepts the four modes, and emulated-tpm only with a TPM in software', function () {
    expect(buildAgentConfig({ dataDir: root, identity: 'id-secret' }).identity).to.equal('id-secret');
    expect(buildAgentConfig({ dataDir: root, identity: 'emulated-tpm', tpm: 'swtpm' }).identity).to.equal('emulated-tpm');
    expect(() => buildAgentConfig({ dataDir: root, identity: 'emulated-tpm', tpm: 'device:/dev/tpmrm0' })).to.throw(InvalidConfig, /emulated-tpm needs/);
    expect(() => buildAgentConfig({ dataDir: root, identity: 'tpm2' as never })).to.throw(InvalidConfig, /agent.identity/);
    expect(() => buildAgentConfig({ dataDir: root, hostId: 'serial:123' })).to.throw(InvalidConfig, /agent.hostId/);
  });
});
