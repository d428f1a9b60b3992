import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { EVIDENCE_LIMITS } from '../../lib/broker/tpm-evidence.js';
import { TpmEvidenceProvider, type TpmEvidenceProviderOptions } from '../../lib/kbs-client/tpm-evidence-provider.js';
import type { Tpm } from '../../lib/tpm-access/tpm-port.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** How long a read of a FIFO is given to give up before it is taken as hung; generous for a loaded host. */
const HANG_MS = 20_000;

/** A TPM that quotes without one: these tests are about the log files read after the quote. */
const quotingTpm = {
  ensureAk: async () => undefined,
  quote: async () => ({ attest: new Uint8Array([1]), signature: new Uint8Array([2]), pcrBlob: new Uint8Array([3]) }),
} as unknown as Tpm;

function evidenceWith(logs: Pick<TpmEvidenceProviderOptions, 'imaLogPath' | 'bootLogPath'>): Promise<unknown> {
  return new TpmEvidenceProvider({ tpm: quotingTpm, agentId: 'node-1', ...logs }).primaryEvidence(new Uint8Array(32)).then(
    (value) => value,
    (error: unknown) => error,
  );
}

/**
 * The IMA list and boot log the KBS client sends (`kbs get-resource --ima-log/--boot-log`, the demo):
 * read with a plain readFile, a FIFO held the attestation for ever (waiting for a writer), /dev/zero
 * was read until memory ran out, and a log longer than the broker accepts was read whole to be
 * refused there. Read as regular files up to the broker's bounds, refused naming the option.
 */
describe('kbs-client: the log files the TPM evidence carries', function () {
  this.timeout(4 * HANG_MS);
  const temp = tempDirPerTest('ironlime-kbs-logs-');

  it('sends a regular IMA list as text and a boot log in base64', async () => {
    const ima = path.join(temp.path, 'ascii_runtime_measurements');
    const boot = path.join(temp.path, 'binary_bios_measurements');
    writeFileSync(ima, '10 aa ima-ng sha256:bb boot_aggregate\n');
    writeFileSync(boot, Buffer.from([0, 1, 2, 255]));
    const evidence = (await evidenceWith({ imaLogPath: ima, bootLogPath: boot })) as Record<string, unknown>;
    expect(evidence['ima_measurement_list']).to.equal('10 aa ima-ng sha256:bb boot_aggregate\n');
    expect(evidence['mb_measurement_list']).to.equal('AAEC/w==');
  });

  it('refuses a FIFO given as the IMA list at once, naming the option', async () => {
    const fifo = path.join(temp.path, 'ima.fifo');
    execFileSync('mkfifo', [fifo]);
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise((resolve) => {
      timer = setTimeout(() => resolve('still waiting'), HANG_MS);
    });
    const outcome = await Promise.race([evidenceWith({ imaLogPath: fifo }), hung]);
    clearTimeout(timer);
    try {
      // A read still waiting on the FIFO ends at end of file instead of holding a pool thread.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader is waiting, as it should be.
    }
    expect(outcome).to.be.instanceOf(InvalidParameterValue);
    expect((outcome as Error).message).to.equal(`imaLogPath: ${fifo} is not a regular file`);
  });

  it('refuses /dev/zero given as the boot log instead of reading it', async () => {
    const outcome = await evidenceWith({ bootLogPath: '/dev/zero' });
    expect(outcome).to.be.instanceOf(InvalidParameterValue);
    expect((outcome as Error).message).to.equal('bootLogPath: /dev/zero is not a regular file');
  });

  it('refuses a boot log longer than the broker accepts, and a missing IMA list, naming the option', async () => {
    const boot = path.join(temp.path, 'huge-boot-log');
    writeFileSync(boot, '');
    truncateSync(boot, EVIDENCE_LIMITS.mbLog + 1);
    const tooLong = await evidenceWith({ bootLogPath: boot });
    expect(tooLong).to.be.instanceOf(InvalidParameterValue);
    expect((tooLong as Error).message).to.equal(`bootLogPath: ${boot} holds more than the ${EVIDENCE_LIMITS.mbLog} bytes bootLogPath may name`);
    const missing = await evidenceWith({ imaLogPath: path.join(temp.path, 'absent') });
    expect(missing).to.be.instanceOf(InvalidParameterValue);
    expect((missing as Error).message).to.equal(`imaLogPath: cannot read ${path.join(temp.path, 'absent')}: ENOENT`);
  });
});
