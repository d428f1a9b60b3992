import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * PFP v1.06 firmware logs the GPT of the boot disk in PCR 5 as EV_EFI_GPT_EVENT2 (the partition
 * table with its identifying fields removed) instead of EV_EFI_GPT_EVENT, after PCR 5's separator
 * as EV_EFI_GPT_EVENT is (every shipped log measures the GPT after it).
 */
describe('mb policy: PFP v1.06 event types of real boots pass', () => {
  it('the PCR 5 GPT logged as EV_EFI_GPT_EVENT2, after the separator', () => {
    const log = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
    const gpt = log.parsed.events.findIndex((e) => e.pcrIndex === 5 && e.untrustedType === ev.EV_EFI_GPT_EVENT);
    const separator = log.parsed.events.findIndex((e) => e.pcrIndex === 5 && e.untrustedType === ev.EV_SEPARATOR);
    expect(separator).to.be.greaterThan(-1).and.lessThan(gpt);
    const edited = log.edit(gpt, log.relabel(gpt, ev.EV_EFI_GPT_EVENT2));
    const result = checkMeasuredBoot({ eventLog: new Uint8Array(edited), quotedPcrs: selfQuote(parseEventLogInput(edited)), refstate: createRefstate(log.parsed) });
    expect(result.failures.map((f) => String(f.context.reason))).to.deep.equal([]);
    expect(result.passed).to.equal(true);
  });
});
