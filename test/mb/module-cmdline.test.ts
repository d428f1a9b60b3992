import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * GRUB measures a multiboot module's command line (Xen's dom0 kernel and initrd, `module2 …`) as a
 * PCR 8 `module_cmdline: ` string after the multiboot kernel's own `kernel_cmdline: `. The text
 * after the prefix is what GRUB measures, like the kernel command line's.
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

const modules = ['/vmlinuz-6.1.0-xen root=/dev/mapper/vg-root ro\0', '/initrd.img-6.1.0-xen\0'];

describe('mb policy: multiboot module command lines in PCR 8', () => {
  it('module_cmdline strings after the kernel command line, proven by their digests, pass', () => {
    const withModules = secureBoot.edit(cmdline, Buffer.concat([
      secureBoot.relabel(cmdline, ev.EV_IPL),
      ...modules.map((m) => grubString(`module_cmdline: ${m}`, m.slice(0, -1))),
    ]));
    expect(check(withModules)).to.deep.equal({ passed: true, reasons: [] });
  });

  it('a module_cmdline text its digest does not measure fails', () => {
    const log = secureBoot.edit(cmdline, Buffer.concat([secureBoot.relabel(cmdline, ev.EV_IPL), grubString(`module_cmdline: ${modules[0] ?? ''}`, 'something else')]));
    const { passed, reasons } = check(log);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline + 1}: PCR 8 string ${JSON.stringify(`module_cmdline: ${modules[0] ?? ''}`.slice(0, 60))} is not what its digest measures`]);
  });

  it('another kernel command line renamed module_cmdline (still proven) and the good one extended at runtime fails', () => {
    const evil = `${goodText.slice(0, -1)} init=/bin/sh`;
    const booted = new CraftedLog(secureBoot.edit(cmdline, secureBoot.withDigestsOf(cmdline, evil)));
    const attack = booted.edit(cmdline, booted.withData(cmdline, Buffer.from(`module_cmdline: ${evil}\0`, 'latin1')), [
      grubString(`kernel_cmdline: ${goodText}`, goodText.slice(0, -1)),
    ]);
    const { passed, reasons } = check(attack);
    expect(passed).to.equal(false);
    expect(reasons).to.deep.equal([`event_log: event ${cmdline}: PCR 8 string ${JSON.stringify(`module_cmdline: ${evil}`.slice(0, 60))} is a module command line before any kernel command line`]);
  });

});
