import { expect } from 'chai';
import { certificationKey } from '../../lib/agent/push/certification-key.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import type { TpmHashAlgorithm } from '../../lib/tpm-access/tpm-port.js';
import { startTestSwtpm, type SwtpmFixture } from '../tpm-access/tpm-test-helpers.js';
import { tpmNameHex } from './helpers/tpm-name.js';

describe('push agent: the certification key of a real TPM\'s AK (swtpm, tpm2-tools)', function () {
  this.timeout(120_000);
  let fixture: SwtpmFixture;

  before(async () => {
    fixture = await startTestSwtpm();
  });

  after(async () => {
    await fixture?.cleanup();
  });

  it('names the AK as the TPM does (nameAlg ‖ H_nameAlg of its TPMT_PUBLIC) and says its algorithm and size: RSA 2048, P-256, P-384', async function () {
    const cases: [ekAlgorithm: 'rsa' | 'ecc', hash: TpmHashAlgorithm, algorithm: string, size: number][] = [
      ['rsa', 'sha256', 'rsa', 2048],
      ['ecc', 'sha256', 'ecc', 256],
      ['ecc', 'sha384', 'ecc', 384],
    ];
    for (const [ekAlgorithm, hash, algorithm, size] of cases) {
      const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti, ekAlgorithm });
      try {
        await tpm.ensureEk();
        const ak = await tpm.ensureAk(hash);
        const key = certificationKey(ak);
        const label = `${ekAlgorithm} AK, ${hash}`;
        // The name worked out here from the bytes the TPM gave (test helper, not lib/), itself checked
        // against the name the TPM computed (`tpm2_readpublic -n`).
        const name = tpmNameHex(ak.akPublic);
        expect(name, `${label}: the TPM's own name`).to.equal(Buffer.from(ak.akName).toString('hex'));
        expect(key['local_identifier'], label).to.equal(name);
        expect([key['key_algorithm'], key['key_size']], label).to.deep.equal([algorithm, size]);
      } finally {
        await tpm.close();
      }
    }
  });
});
