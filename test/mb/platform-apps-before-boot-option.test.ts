import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * A boot manager may start its own applications before it calls the boot option (PFP: the
 * "Calling EFI Application from Boot Option" action precedes the boot option's application). The
 * physical Dell host of go-tpm-tools' gdc-host.bin runs `\efi\Dell\System_Services\System_Services.efi`
 * from the disk so, then shim and GRUB (Secure Boot off). Like firmware-volume applications, the
 * refstate lists it in `firmware_apps` and the boot chain is shim and GRUB.
 */

const bytes = Buffer.from(vectorBytes('go-tpm-tools', 'eventlogs', 'gdc-host.bin'));
const gdc = new CraftedLog(bytes);

function check(log: Buffer, refstate: MbRefstate) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

/** gdc-host also records "DMA Protection Disabled" in PCR 7 (PFP), which the policy refuses; the same host with DMA protection on logs no such event. */
const dmaOff = gdc.parsed.events.findIndex((e) => e.pcrIndex === 7 && Buffer.from(e.untrustedData).toString('latin1') === 'DMA Protection Disabled');
const dmaOn = new CraftedLog(gdc.edit(dmaOff, Buffer.alloc(0)));
const dellApp = dmaOn.parsed.events.findIndex((e) => e.pcrIndex === 4 && e.untrustedType === 0x80000003);

describe('mb refstate: applications the boot manager starts before the boot option', () => {
  it('gdc-host as logged: refused for its DMA protection, not for its application count', () => {
    expect(() => createRefstate(gdc.parsed, { withoutSecureBoot: true })).to.throw(`event_log: event ${dmaOff}: EV_EFI_ACTION is not expected in PCR 7`);
  });

  it('gdc-host with DMA protection: the Dell application is a firmware_apps entry, the boot chain shim and GRUB, and the log passes', () => {
    const refstate = createRefstate(dmaOn.parsed, { withoutSecureBoot: true });
    const digest = `0x${Buffer.from(dmaOn.event(dellApp).digests.find((d) => d.alg.name === 'sha256')?.digest ?? []).toString('hex')}`;
    expect(refstate.firmware_apps).to.deep.equal([{ sha256: digest }]);
    expect(check(gdc.edit(dmaOff, Buffer.alloc(0)), refstate)).to.deep.equal({ passed: true, reasons: [] });
  });

  it('another application in its place fails', () => {
    const refstate = createRefstate(dmaOn.parsed, { withoutSecureBoot: true });
    const { passed, reasons } = check(dmaOn.edit(dellApp, dmaOn.withDigestsOf(dellApp, 'another application')), refstate);
    expect(passed).to.equal(false);
    expect(reasons.some((r) => r.startsWith('kernels[0]: the log has 3 EFI application(s) in PCR 4')), reasons.join('\n')).to.equal(true);
  });
});
