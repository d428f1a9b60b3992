import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * GRUB measures into PCR 9 every file it reads. Fedora CoreOS's GRUB configuration sources
 * `/ignition.firstboot` (go-attestation's coreos_36 log, GCE, Secure Boot off), a name that is none
 * of Keylime's patterns (loader entry, `/grub`, `/vmlinuz`, `/initrd`, `/initramfs`).
 */

const coreos = new CraftedLog(Buffer.from(vectorBytes('go-attestation', 'coreos_36_shielded_vm_no_secure_boot_eventlog')));
const firstboot = coreos.parsed.events.findIndex((e) => e.pcrIndex === 9 && Buffer.from(e.untrustedData).toString('latin1') === '/ignition.firstboot\0');
const vmlinuz = coreos.parsed.events.findIndex((e) => e.pcrIndex === 9 && Buffer.from(e.untrustedData).toString('latin1').includes('/vmlinuz-'));

function check(log: Buffer, refstate: MbRefstate) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

describe('mb policy: PCR 9 files GRUB read by any path', () => {
  it('Fedora CoreOS: a refstate made from the log passes it', () => {
    const refstate = createRefstate(coreos.parsed, { withoutSecureBoot: true });
    expect(check(Buffer.from(vectorBytes('go-attestation', 'coreos_36_shielded_vm_no_secure_boot_eventlog')), refstate)).to.deep.equal({ passed: true, reasons: [] });
  });

  it('a PCR 9 text that is no path still fails', () => {
    const refstate = createRefstate(coreos.parsed, { withoutSecureBoot: true });
    const log = coreos.edit(firstboot, coreos.withData(firstboot, Buffer.from('ignition.firstboot\0', 'latin1')));
    expect(check(log, refstate).reasons).to.deep.equal([`event_log: event ${firstboot}: PCR 9 file "ignition.firstboot" is not a loader entry, GRUB file, kernel, initrd or file path`]);
  });

  it('another kernel file still fails (control)', () => {
    const refstate = createRefstate(coreos.parsed, { withoutSecureBoot: true });
    const { passed, reasons } = check(coreos.edit(vmlinuz, coreos.withDigestsOf(vmlinuz, 'another kernel')), refstate);
    expect(passed).to.equal(false);
    expect(reasons.some((r) => r.startsWith('kernels[0].vmlinuz_plain_sha256')), reasons.join('\n')).to.equal(true);
  });
});
