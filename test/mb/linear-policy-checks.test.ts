import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { LISTED_EVENTS } from '../../lib/mb/internal/policy-finding.js';
import { CraftedLog, variableData, withVariableData } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';
import { cpuTimed } from '../helpers/cpu-time.js';

/** A dbx holding one EFI_SIGNATURE_LIST of `copies` copies of the first signature of `dbx`. */
function repeatedSignature(dbx: Buffer, copies: number): Buffer {
  const headerSize = dbx.readUInt32LE(20);
  const signatureSize = dbx.readUInt32LE(24);
  const first = 28 + headerSize;
  const list = Buffer.alloc(first + copies * signatureSize);
  dbx.copy(list, 0, 0, first);
  list.writeUInt32LE(list.length, 16);
  for (let i = 0; i < copies; i++) {
    dbx.copy(list, first + i * signatureSize, first, first + signatureSize);
  }
  return list;
}

describe('mb policy: log-controlled lists are checked in linear time', () => {
  it('16,000 copies of one dbx signature (under MAX_KEY_VARIABLE_SIGNATURES) are evaluated well under the time a quadratic index took (27 s)', () => {
    const crafted = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
    const refstate = createRefstate(crafted.parsed);
    const i = crafted.variableIndex('dbx');
    const dbx = crafted.event(i);
    const data = withVariableData(dbx, repeatedSignature(variableData(dbx), 16_000));
    const log = crafted.edit(i, crafted.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, data));

    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { value: check, ms } = cpuTimed(() => checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate }));

    expect(check.replay?.ok).to.equal(true);
    // The refstate requires the log's 371 revocations: the one repeated is found, the others are not.
    expect(check.failures.map((f) => f.context.reason)).to.deep.equal(['dbx lacks 370 revocation(s) the refstate requires']);
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(5000);
  });

  it('6,000 PCR 2 events against 6,000 option_roms are looked up, not compared pair by pair', () => {
    const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
    const crafted = new CraftedLog(bytes);
    const count = 6_000;
    const optionRoms = Array.from({ length: count }, (_, i) => ({ sha256: `0x${createHash('sha256').update(`driver ${i}`).digest('hex')}` }));
    const base = createRefstate(crafted.parsed);
    const refstate = { ...base, option_roms: [...(base.option_roms ?? []), ...optionRoms] };
    // Drivers loaded after the separator (PCR 2 accepts them); the last one is not in option_roms.
    const drivers = Array.from({ length: count }, (_, i) => crafted.encode(2, ev.EV_EFI_BOOT_SERVICES_DRIVER, Buffer.from(`driver ${i === count - 1 ? 'other' : i}`)));
    const log = Buffer.concat([bytes, ...drivers]);

    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { value: check, ms } = cpuTimed(() => checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate }));

    expect(check.failures.map((f) => f.context.component)).to.deep.equal(['option_roms']);
    // Comparing every pair took about 10 s here; looking up takes under one.
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(6000);
  });

  it('2,000 scrtm_and_bios entries against 4,000 firmware events: each entry costs its own length, not the log\'s', () => {
    const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
    const crafted = new CraftedLog(bytes);
    const base = createRefstate(crafted.parsed);
    const refstate = { ...base, scrtm_and_bios: Array.from({ length: 2_000 }, () => ({ platform_firmware: [] })) };
    const blob = crafted.encode(0, ev.EV_EFI_PLATFORM_FIRMWARE_BLOB, Buffer.alloc(16));
    const log = Buffer.concat([bytes, ...Array.from({ length: 4_000 }, () => blob)]);

    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { value: check, ms } = cpuTimed(() => checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate }));

    const count = check.failures.find((f) => String(f.context.component) === 'scrtm_and_bios[0].platform_firmware');
    expect(String(count?.context.reason)).to.match(/^the log has 4002 firmware code measurement\(s\) in PCR 0, the refstate expects 0/);
    // A count mismatch lists the first events only: listing all of them for every entry took 22 s and 1 GB here.
    expect(count?.context.actual).to.have.length(LISTED_EVENTS);
    expect(count?.context.events).to.have.length(LISTED_EVENTS);
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(5000);
  });

  it('2,000 MokList events against 2,000 mokdig digests: one finding, not a copy of the refstate list per event', () => {
    const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
    const crafted = new CraftedLog(bytes);
    const base = createRefstate(crafted.parsed);
    const mokdig = Array.from({ length: 2_000 }, (_, i) => ({ sha256: `0x${createHash('sha256').update(`mok ${i}`).digest('hex')}` }));
    const mokList = crafted.encode(14, ev.EV_IPL, Buffer.from('MokList\0', 'latin1'));
    const log = Buffer.concat([bytes, ...Array.from({ length: 2_000 }, () => mokList)]);

    const check = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate: { ...base, mokdig } });

    expect(check.failures.map((f) => String(f.context.reason))).to.deep.equal(['MokList is measured 2001 times (the first 32 listed)']);
    // Each event's finding carried the whole mokdig list: 321 MB of failure JSON here.
    expect(JSON.stringify(check.failures).length).to.be.below(100_000);
  });

  it('strings of NULs followed by one other character are trimmed in linear time (a PCR 9 file name, a device path)', () => {
    const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
    const crafted = new CraftedLog(bytes);
    const refstate = createRefstate(crafted.parsed);
    const nuls = Buffer.concat([Buffer.alloc(100_000), Buffer.from('x')]);
    // A UEFI_IMAGE_LOAD_EVENT whose device path is four file-path nodes of NULs, each ending in 'A'.
    const node = Buffer.alloc(65_534);
    node.writeUInt16LE(0x0404, 0);
    node.writeUInt16LE(node.length, 2);
    node[node.length - 2] = 0x41;
    const path = Buffer.concat([node, node, node, node]);
    const image = Buffer.alloc(32);
    image.writeBigUInt64LE(BigInt(path.length), 24);
    const log = Buffer.concat([bytes, crafted.encode(9, ev.EV_IPL, nuls), crafted.encode(4, ev.EV_EFI_BOOT_SERVICES_APPLICATION, Buffer.concat([image, path]))]);

    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { value: check, ms } = cpuTimed(() => checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate }));

    expect(check.replay?.ok).to.equal(true);
    expect(check.failures.some((f) => /PCR 9 file .* is not a loader entry/.test(String(f.context.reason)))).to.equal(true);
    // Trimmed with the regex /\0+$/, this log took 18 to 28 s.
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(3000);
  });
});
