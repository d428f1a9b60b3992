import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../interfaces/node.js';
import { evilFile, knownGoodFiles } from '../../lib/demo/demo-catalog.js';
import { formatTable, nodeRow } from '../../lib/demo/demo-table.js';
import { missingSwtpmProgram } from '../../lib/demo/node-tpms.js';

describe('demo parts', function () {
  it('finds which swtpm program is missing from a PATH', function () {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-path-'));
    try {
      expect(missingSwtpmProgram(dir)).to.equal('swtpm');
      for (const program of ['swtpm', 'swtpm_setup']) {
        writeFileSync(path.join(dir, program), '#!/bin/sh\n');
        chmodSync(path.join(dir, program), 0o755);
      }
      // Present but not executable does not count.
      writeFileSync(path.join(dir, 'tpm2_quote'), '');
      expect(missingSwtpmProgram(`/nonexistent${path.delimiter}${dir}`)).to.equal('tpm2_quote');
      chmodSync(path.join(dir, 'tpm2_quote'), 0o755);
      expect(missingSwtpmProgram(dir)).to.equal(undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps known-good digests stable and makes a fresh evil digest every time', function () {
    const files = knownGoodFiles();
    expect(files.map((file) => file.path)).to.include('/usr/bin/bash');
    expect(knownGoodFiles()).to.deep.equal(files);
    expect(files.every((file) => /^[0-9a-f]{64}$/.test(file.digest))).to.equal(true);
    const evil = evilFile();
    expect(evil.path).to.equal('/tmp/evil');
    expect(evil.digest).to.not.equal(evilFile().digest);
    expect(files.map((file) => file.digest)).to.not.include(evil.digest);
  });

  it("shows the broker's reason when a node that passed is refused its disk key", function () {
    const passed = { name: 'node-2', provisionState: 'active', trust: { level: 'hardware-tpm' }, lastAttestation: { status: 'passed', eventIds: [] } } as unknown as Node;
    const row = nodeRow(passed, { cell: 'refused: PolicyDeny', detail: 'the verifier does not trust this node right now' });
    expect(row).to.deep.include({ diskKey: 'refused: PolicyDeny', detail: 'broker: the verifier does not trust this node right now' });
    const failed = { ...passed, lastAttestation: { status: 'failed', eventIds: ['ima.validation.ima-ng.not_in_allowlist'] } } as unknown as Node;
    expect(nodeRow(failed, { cell: 'refused: AttestationError', detail: 'evidence refused: ima.validation.ima-ng.not_in_allowlist' }).detail).to.equal(
      'ima.validation.ima-ng.not_in_allowlist',
    );
    expect(nodeRow(passed, { cell: 'released (32 bytes)' }).detail).to.equal('');
  });

  it('formats the node table with padded columns', function () {
    expect(
      formatTable([
        { name: 'node-1', state: 'active', trust: 'hardware-tpm', attestation: 'passed', diskKey: 'released (32 bytes)', detail: '' },
        { name: 'node-3', state: 'deploy failed', trust: 'hardware-tpm', attestation: 'failed', diskKey: 'refused: AttestationError', detail: 'ima.validation.ima-ng.not_in_allowlist' },
        { name: 'node-4', state: 'deploy failed', trust: 'id-secret', attestation: 'failed', diskKey: '-', detail: 'deploy needs trust level hardware-tpm' },
      ]),
    ).to.deep.equal([
      '  node    provision state  trust level   attestation  disk key (broker)          events / reason',
      '  ------  ---------------  ------------  -----------  -------------------------  ---------------',
      '  node-1  active           hardware-tpm  passed       released (32 bytes)',
      '  node-3  deploy failed    hardware-tpm  failed       refused: AttestationError  ima.validation.ima-ng.not_in_allowlist',
      '  node-4  deploy failed    id-secret     failed       -                          deploy needs trust level hardware-tpm',
    ]);
  });
});
