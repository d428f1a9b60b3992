import { expect } from 'chai';
import { checkMeasuredBootLog } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import type { ParsedEventLog } from '../../lib/mb/event-log.js';
import { compileKernelCmdline } from '../../lib/mb/internal/kernel-cmdline-pattern.js';
import type { MbRefstate, RefstateKernel } from '../../lib/mb/mb-refstate.js';
import { parseMbRefstate } from '../../lib/mb/parse-refstate.js';
import { MbRefstateError } from '../../lib/mb/mb-refstate.js';
import { loadLog, selfQuote } from './mb-vectors.js';

/**
 * The `kernel_cmdline` Keylime's `create_mb_refstate` writes for each shipped boot log: computed
 * independently (not an upstream assertion) by running `tpm2_eventlog --eventlog-version=2` 5.4 on
 * the log, applying Keylime's `__unescape_eventlog` (strip the quotes, unescape, drop one trailing
 * NUL) and CPython 3.11's `re.escape` to the PCR 8 `kernel_cmdline: ` string.
 */
const KEYLIME_KERNEL_CMDLINE: ReadonlyArray<[string[], boolean, string]> = [
  [['keylime', 'measured_boot', 'mb_log.b64'], false,
    '\\(hd0,gpt2\\)/vmlinuz\\-5\\.14\\.0\\-183\\.el9\\.x86_64\\ root=/dev/mapper/cs\\-root\\ ro\\ crashkernel=1G\\-4G:192M,4G\\-64G:256M,64G\\-:512M\\ resume=/dev/mapper/cs\\-swap\\ rd\\.lvm\\.lv=cs/root\\ rd\\.lvm\\.lv=cs/swap\\ rhgb\\ quiet'],
  [['keylime', 'measured_boot', 'binary_bios_measurements'], true,
    '\\(hd3,gpt2\\)/vmlinuz\\-6\\.11\\.5\\-300\\.fc41\\.x86_64\\ root=UUID=7d3fbd01\\-5598\\-48ea\\-afb0\\-67ce7c3853fc\\ ro\\ resume=/dev/mapper/luks\\-d3f0adc4\\-c30b\\-4aad\\-aa80\\-b469c29bc160\\ rd\\.lvm\\.lv=fedora/root\\ rd\\.luks\\.uuid=luks\\-d53e2fe9\\-cc84\\-4bad\\-b410\\-16d3a07d6071\\ rd\\.lvm\\.lv=fedora/swap\\ rd\\.luks\\.uuid=luks\\-d3f0adc4\\-c30b\\-4aad\\-aa80\\-b469c29bc160\\ rhgb\\ quiet'],
  [['keylime', 'measured_boot', 'binary_bios_measurements-secureboot'], false,
    '\\(hd0,gpt2\\)/vmlinuz\\-5\\.14\\.0\\-503\\.11\\.1\\.el9_5\\.x86_64\\ root=/dev/mapper/rhel_rhel\\-\\-9\\-root\\ ro\\ crashkernel=1G\\-4G:192M,4G\\-64G:256M,64G\\-:512M\\ resume=/dev/mapper/rhel_rhel\\-\\-9\\-swap\\ rd\\.lvm\\.lv=rhel_rhel\\-9/root\\ rd\\.lvm\\.lv=rhel_rhel\\-9/swap\\ rhgb\\ quiet\\ console=tty0\\ console=ttyS0'],
];

function evaluate(log: ParsedEventLog, refstate: MbRefstate): string[] {
  return checkMeasuredBootLog(log, selfQuote(log), parseMbRefstate(JSON.stringify(refstate))).failures.map((f) => String(f.context.component));
}

function withCmdline(refstate: MbRefstate, kernel_cmdline: string): MbRefstate {
  const [kernel] = refstate.kernels as [RefstateKernel];
  return { ...refstate, kernels: [{ ...kernel, kernel_cmdline }] };
}

describe('mb refstates cross over with Keylime (GRUB\'s trailing NUL in the kernel command line)', () => {
  for (const [parts, withoutSecureBoot, keylimeCmdline] of KEYLIME_KERNEL_CMDLINE) {
    const name = parts.join('/');
    const log = loadLog(...parts);
    const ours = createRefstate(log, { withoutSecureBoot });

    it(`${name}: ours writes the kernel_cmdline Keylime's create_mb_refstate writes (so ours matches on Keylime)`, () => {
      expect(ours.kernels[0]?.kernel_cmdline).to.equal(keylimeCmdline);
      expect(JSON.stringify(ours)).to.not.include('\\u0000');
    });

    it(`${name}: a Keylime-made kernel_cmdline passes on our verifier; a wrong one still fails`, () => {
      expect(evaluate(log, withCmdline(ours, keylimeCmdline))).to.deep.equal([]);
      expect(evaluate(log, withCmdline(ours, `${keylimeCmdline}\\ single`))).to.deep.equal(['kernels[0].kernel_cmdline']);
    });

    it(`${name}: a refstate made by ironlime before (escaped NUL kept) still passes`, () => {
      expect(evaluate(log, withCmdline(ours, `${keylimeCmdline}\0`))).to.deep.equal([]);
    });
  }

  it('a kernel_cmdline regex runs in linear time: (a+)+$ refused nowhere, cannot stall; RE2-inexpressible ones are refused at parse', () => {
    const log = loadLog('keylime', 'measured_boot', 'mb_log.b64');
    const ours = createRefstate(log);
    const evil = withCmdline(ours, '\\(hd0,gpt2\\)/vmlinuz\\-5\\.14\\.0\\-183\\.el9\\.x86_64 (.*)(.*)(.*)(.*)(.*)(a+)+$');
    expect(evaluate(log, evil)).to.deep.equal(['kernels[0].kernel_cmdline']);
    const matches = compileKernelCmdline('(a+)+$');
    expect(matches(`kernel_cmdline: ${'a'.repeat(28)}!`)).to.equal(false);
    expect(matches(`kernel_cmdline: ${'a'.repeat(100_000)}!`)).to.equal(false);
    expect(() => parseMbRefstate(JSON.stringify(withCmdline(ours, '(a)\\1'))))
      .to.throw(MbRefstateError, 'kernels[0].kernel_cmdline is not a valid regular expression (backreference');
    expect(() => parseMbRefstate(JSON.stringify(withCmdline(ours, 'quiet(?=x)'))))
      .to.throw(MbRefstateError, 'kernels[0].kernel_cmdline is not a valid regular expression (lookahead');
  });
});
