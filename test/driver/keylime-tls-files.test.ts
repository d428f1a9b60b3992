import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { keylimeTestNode as node } from './driver-test-node.js';
import { useFakeKeylime } from './fake-keylime-fixture.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });

/** `operation`'s outcome, or a failure when it has not settled within `ms` (a read that blocks for ever). */
async function settledWithin(operation: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([operation.then(() => new Error('expected a rejection'), (error: unknown) => error), hung]);
  } finally {
    clearTimeout(timer);
  }
}

// A TLS file setting is the operator's; a mistyped one may name a device or a pipe, never a PEM file.
describe('keylime driver: a TLS certificate path that is not a regular file', function () {
  const fixture = useFakeKeylime('ironlime-tls-files-', ALLOWLIST, 'agent-A');

  const refused = async (file: string): Promise<InvalidParameterValue> => {
    const task = createTask(node({ ...fixture.info, keylime_tls_cert: file }), CONFIG);
    // 20 s: refusing takes milliseconds; reading /dev/zero to its end never comes, a FIFO blocks for ever.
    const error = await settledWithin(new KeylimeAttestation().validateSecurityStatus(task), 20_000);
    expect(error).to.be.instanceOf(InvalidParameterValue);
    return error as InvalidParameterValue;
  };

  it('refuses a device (/dev/zero) at once instead of reading it until memory runs out', async function () {
    const error = await refused('/dev/zero');
    expect(error.field).to.equal('driver_info.keylime_tls_cert');
    expect(error.message).to.equal('driver_info.keylime_tls_cert: /dev/zero is not a regular file');
    expect(fixture.fake.requests).to.deep.equal([]);
  });

  it('refuses a FIFO without waiting for a writer', async function () {
    const fifo = path.join(fixture.dir, 'client.fifo');
    execFileSync('mkfifo', [fifo]);
    const error = await refused(fifo);
    expect(error.message).to.equal(`driver_info.keylime_tls_cert: ${fifo} is not a regular file`);
  });
});
