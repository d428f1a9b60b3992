import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { CraftedLog } from './crafted-log.js';
import { goTpmToolsLogs, selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * RHEL 8's GRUB carries Red Hat's older TPM patches: PCR 8 strings `grub_cmd <command>` and
 * `grub_kernel_cmdline <command line>` (no colon), and PCR 9 `grub_linuxefi Kernel` /
 * `grub_linuxefi Initrd` for the kernel and initrd it loads. go-tpm-tools' rhel8-uefi.bin is such a
 * boot (GCE, Secure Boot on), quoted by go-tpm-tools' expected PCR values.
 */

const rhel8 = new CraftedLog(Buffer.from(vectorBytes('go-tpm-tools', 'eventlogs', 'rhel8-uefi.bin')));
const quoted = goTpmToolsLogs()['rhel8-uefi.bin']?.expected_pcrs ?? {};

function check(log: Buffer, ref: MbRefstate) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate: ref });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

function textOf(index: number): string {
  return Buffer.from(rhel8.event(index).untrustedData).toString('latin1');
}

const cmdline = rhel8.parsed.events.findIndex((e) => e.pcrIndex === 8 && Buffer.from(e.untrustedData).toString('latin1').startsWith('grub_kernel_cmdline '));

describe('mb policy: Red Hat GRUB (older TPM patches) strings', () => {
  it('a refstate made from the RHEL 8 log passes that log, quoted by its real PCR values', () => {
    const refstate = createRefstate(rhel8.parsed);
    const booted = textOf(cmdline).slice('grub_kernel_cmdline '.length, -1);
    expect(booted.startsWith('(hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64 root=UUID=')).to.equal(true);
    expect(refstate.kernels[0]?.kernel_cmdline).to.equal(booted.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, (c) => `\\${c}`));
    expect(refstate.kernels[0]?.initrd_plain_sha256).to.equal('0xdf08d49b7c52bbd8b3431249f1e2786903fde05fc314a27fccd6dbce0af4005f');
    const result = checkMeasuredBoot({ eventLog: vectorBytes('go-tpm-tools', 'eventlogs', 'rhel8-uefi.bin'), quotedPcrs: quoted, refstate });
    expect(result.failures).to.deep.equal([]);
    expect(result.passed).to.equal(true);
  });

  it('another kernel command line under grub_kernel_cmdline fails', () => {
    const refstate = createRefstate(rhel8.parsed);
    const evil = `${textOf(cmdline).slice('grub_kernel_cmdline '.length, -1)} init=/bin/sh`;
    const booted = new CraftedLog(rhel8.edit(cmdline, rhel8.withDigestsOf(cmdline, evil)));
    const log = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`grub_kernel_cmdline ${evil}\0`, 'latin1')));
    expect(check(log, refstate).reasons).to.deep.equal(['kernels[0].kernel_cmdline: the kernel command line does not match the refstate regex']);
  });

  it('a grub_kernel_cmdline text its digest does not measure fails', () => {
    const refstate = createRefstate(rhel8.parsed);
    const log = rhel8.edit(cmdline, rhel8.withDigestsOf(cmdline, 'something else'));
    const { passed, reasons } = check(log, refstate);
    expect(passed).to.equal(false);
    expect(reasons).to.include(`event_log: event ${cmdline}: PCR 8 string ${JSON.stringify(textOf(cmdline).slice(0, 60))} is not what its digest measures`);
  });

  for (const goodPrefix of ['grub_kernel_cmdline ', 'kernel_cmdline: ']) {
    it(`another command line relabelled "grub_cmd " (still proven) and the good one extended at runtime as "${goodPrefix}" fails`, () => {
      const refstate = createRefstate(rhel8.parsed);
      const good = textOf(cmdline).slice('grub_kernel_cmdline '.length);
      const evil = `${good.slice(0, -1)} init=/bin/sh`;
      const booted = new CraftedLog(rhel8.edit(cmdline, rhel8.withDigestsOf(cmdline, evil)));
      const attack = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`grub_cmd ${evil}\0`, 'latin1')), [
        rhel8.encode(8, ev.EV_IPL, Buffer.from(`${goodPrefix}${good}`, 'latin1')),
      ]);
      const runtime = new CraftedLog(attack);
      const appended = runtime.parsed.events.length - 1;
      // The appended event's digest is of the whole string; make it what GRUB would have measured.
      const log = runtime.edit(appended, runtime.withDigestsOf(appended, good.slice(0, -1)));
      const { passed, reasons } = check(log, refstate);
      expect(passed).to.equal(false);
      expect(reasons).to.deep.equal([`event_log: event ${cmdline}: PCR 8 string ${JSON.stringify(`grub_cmd ${evil}`.slice(0, 60))} is a kernel command line under the "grub_cmd " prefix`]);
    });
  }

  it('two command lines, one in each form, fail', () => {
    const refstate = createRefstate(rhel8.parsed);
    const good = textOf(cmdline).slice('grub_kernel_cmdline '.length);
    const twice = new CraftedLog(Buffer.concat([Buffer.from(vectorBytes('go-tpm-tools', 'eventlogs', 'rhel8-uefi.bin')), rhel8.encode(8, ev.EV_IPL, Buffer.from(`kernel_cmdline: ${good}`, 'latin1'))]));
    const appended = twice.parsed.events.length - 1;
    const log = twice.edit(appended, twice.withDigestsOf(appended, good));
    const { passed, reasons } = check(log, refstate);
    expect(passed).to.equal(false);
    expect(reasons.some((r) => r.startsWith('kernels[0].kernel_cmdline: the log has 2 kernel command line(s) in PCR 8')), reasons.join('\n')).to.equal(true);
  });
});
