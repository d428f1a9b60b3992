import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * GRUB measures a multiboot module's command line (Xen's dom0 kernel and initrd, `module2 …`) as a
 * PCR 8 `module_cmdline: ` string: the arguments after the module's file name (grub-core/loader/
 * multiboot.c, grub_cmd_module -> add_module (argc - 1, argv + 1)), right after the `grub_cmd: `
 * string of the `module2` command itself (script/execute.c measures each command before running
 * it). The text after the prefix is what GRUB measures, like the kernel command line's.
 */

const secureBoot = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
const refstate = createRefstate(secureBoot.parsed);
const cmdline = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 8 && Buffer.from(e.untrustedData).toString('latin1').startsWith('kernel_cmdline: '));
const goodText = Buffer.from(secureBoot.event(cmdline).untrustedData).toString('latin1').slice('kernel_cmdline: '.length);

function check(log: Buffer) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

/** A PCR 8 GRUB string whose digests are of `measured` (GRUB measures the text after the prefix). */
function grubString(logged: string, measured: string): Buffer {
  const crafted = new CraftedLog(Buffer.concat([Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')), secureBoot.encode(8, ev.EV_IPL, Buffer.from(logged, 'latin1'))]));
  const last = crafted.parsed.events.length - 1;
  return crafted.withDigestsOf(last, measured);
}

/** `module2` commands of a Xen boot and the command lines GRUB measures for them (file name skipped). */
const modules = [
  { command: 'module2 /vmlinuz-6.1.0-xen placeholder root=/dev/mapper/vg-root ro', cmdline: 'placeholder root=/dev/mapper/vg-root ro' },
  { command: 'module2 --nounzip /initrd.img-6.1.0-xen', cmdline: '' },
];

/** A `grub_cmd: ` string and the `module_cmdline: ` string GRUB measures right after it. */
function moduleLoad(m: { command: string; cmdline: string }): Buffer[] {
  return [grubString(`grub_cmd: ${m.command}\0`, m.command), grubString(`module_cmdline: ${m.cmdline}\0`, m.cmdline)];
}

const linuxCommand = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 8 && Buffer.from(e.untrustedData).toString('latin1').startsWith('grub_cmd: linux '));
const vmlinuzRead = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 9 && Buffer.from(e.untrustedData).toString('latin1').includes('/vmlinuz-'));
const kernelApp = secureBoot.parsed.events.findIndex((e, i) => i > vmlinuzRead && e.pcrIndex === 4 && e.untrustedType === ev.EV_EFI_BOOT_SERVICES_APPLICATION);

describe('mb policy: multiboot module command lines in PCR 8', () => {
  it('module_cmdline strings right after their module2 commands, proven by their digests, pass', () => {
    const withModules = secureBoot.edit(cmdline, Buffer.concat([secureBoot.relabel(cmdline, ev.EV_IPL), ...modules.flatMap(moduleLoad)]));
    expect(check(withModules)).to.deep.equal({ passed: true, reasons: [] });
  });

  it('a module_cmdline text its digest does not measure fails', () => {
    const log = secureBoot.edit(cmdline, Buffer.concat([secureBoot.relabel(cmdline, ev.EV_IPL), grubString(`module_cmdline: ${modules[0]?.cmdline ?? ''}\0`, 'something else')]));
    const { passed, reasons } = check(log);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline + 1}: PCR 8 string ${JSON.stringify(`module_cmdline: ${modules[0]?.cmdline ?? ''}\0`.slice(0, 60))} is not what its digest measures`]);
  });

  it('another kernel command line renamed module_cmdline (still proven) and the good one extended at runtime fails', () => {
    const evil = `${goodText.slice(0, -1)} init=/bin/sh`;
    const booted = new CraftedLog(secureBoot.edit(cmdline, secureBoot.withDigestsOf(cmdline, evil)));
    const attack = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`module_cmdline: ${evil}\0`, 'latin1')), [
      grubString(`kernel_cmdline: ${goodText}`, goodText.slice(0, -1)),
    ]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline}: PCR 8 string ${JSON.stringify(`module_cmdline: ${evil}`.slice(0, 60))} is a module command line that does not follow a module command`]);
  });

  it('a second linux command whose command line is renamed module_cmdline (still proven) fails', () => {
    // grub.cfg runs `linux` twice: the good command line first, then another for the same kernel;
    // the second kernel read is renamed a GRUB file in PCR 9, the kernel is measured twice in PCR 4
    // (as the policy allows), and the second command line is logged as a module's.
    const evil = `${goodText.slice(0, -1)} init=/bin/sh`;
    const evilCommand = `linux ${evil}`;
    const attack = secureBoot.edit(cmdline, Buffer.concat([
      secureBoot.relabel(cmdline, ev.EV_IPL),
      grubString(`grub_cmd: ${evilCommand}\0`, evilCommand),
      secureBoot.withData(vmlinuzRead, Buffer.from('(hd0,gpt2)/grub2/themes/background.png\0', 'latin1')),
      secureBoot.relabel(kernelApp, ev.EV_EFI_BOOT_SERVICES_APPLICATION),
      grubString(`module_cmdline: ${evil}\0`, evil),
    ]));
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline + 4}: PCR 8 string ${JSON.stringify(`module_cmdline: ${evil}`.slice(0, 60))} is a module command line that does not follow a module command`]);
  });

  it('a multiboot kernel command line (no file name) renamed a command right after its multiboot2 command fails', () => {
    const xen = 'placeholder dom0_mem=2G,max:2G';
    const attack = secureBoot.edit(cmdline, Buffer.concat([
      secureBoot.relabel(cmdline, ev.EV_IPL),
      grubString(`grub_cmd: multiboot2 /xen.gz ${xen}\0`, `multiboot2 /xen.gz ${xen}`),
      grubString(`grub_cmd: ${xen}\0`, xen),
    ]));
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline + 2}: PCR 8 string ${JSON.stringify(`grub_cmd: ${xen}\0`.slice(0, 60))} is a command right after the loader command "multiboot2", which measures its command line there`]);
  });

  it('the log holds the events the attack edits (control)', () => {
    expect([linuxCommand, vmlinuzRead, kernelApp, cmdline].every((i) => i > 0)).to.equal(true);
    expect(linuxCommand).to.be.lessThan(cmdline);
  });
});
