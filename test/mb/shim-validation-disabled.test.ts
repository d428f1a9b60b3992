import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import type { MbRefstate } from '../../lib/mb/mb-refstate.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * `mokutil --disable-validation` sets shim's MokSBState to 1: shim then starts what it loads
 * unverified and tells the kernel Secure Boot is off. shim measures the variable, when set, into
 * PCR 7 as an EV_EFI_VARIABLE_AUTHORITY UEFI_VARIABLE_DATA (mok.c MOK_VARIABLE_MEASURE), name and
 * value under the digest, and logs it into PCR 14 under its name (not measured).
 */

const secureBootBytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
const secureBoot = new CraftedLog(secureBootBytes);
const noSecureBootBytes = Buffer.from(vectorBytes('go-attestation', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog'));
const noSecureBoot = new CraftedLog(noSecureBootBytes);

/** UEFI_VARIABLE_DATA of shim's MokSBState (SHIM_LOCK_GUID 605dab50-e046-4300-abb6-3dd810dd8b23). */
function mokSbState(value: Uint8Array): Buffer {
  const name = 'MokSBState';
  const sizes = Buffer.alloc(16);
  sizes.writeBigUInt64LE(BigInt(name.length), 0);
  sizes.writeBigUInt64LE(BigInt(value.length), 8);
  return Buffer.concat([Buffer.from('50ab5d6046e00043abb63dd810dd8b23', 'hex'), sizes, Buffer.from(name, 'utf16le'), value]);
}

function check(log: Buffer, refstate: MbRefstate) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

const disabled = "secure_boot: shim's validation is disabled (MokSBState is measured in PCR 7)";

describe('mb policy: shim validation disabled (MokSBState in PCR 7)', () => {
  const refstate = createRefstate(secureBoot.parsed);

  it('MokSBState 1 recorded in PCR 7 fails a refstate with Secure Boot', () => {
    const log = Buffer.concat([secureBootBytes, secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, mokSbState(Uint8Array.of(1)))]);
    expect(check(log, refstate)).to.deep.equal({ passed: false, reasons: [disabled] });
  });

  it('the same record claiming another type still counts (and the type fails on its own)', () => {
    const log = Buffer.concat([secureBootBytes, secureBoot.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, mokSbState(Uint8Array.of(1)))]);
    expect(check(log, refstate).reasons).to.include(disabled);
  });

  it('MokSBState of any other value than the one byte 0 fails', () => {
    const log = Buffer.concat([secureBootBytes, secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, mokSbState(Uint8Array.of(0, 0)))]);
    expect(check(log, refstate)).to.deep.equal({ passed: false, reasons: [disabled] });
  });

  it('MokSBState 0 (validation on) passes (control)', () => {
    const log = Buffer.concat([secureBootBytes, secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, mokSbState(Uint8Array.of(0)))]);
    expect(check(log, refstate)).to.deep.equal({ passed: true, reasons: [] });
  });

  it('a refstate without Secure Boot does not judge it: shim verifies nothing then', () => {
    const withoutSecureBoot = createRefstate(noSecureBoot.parsed, { withoutSecureBoot: true });
    const log = Buffer.concat([noSecureBootBytes, noSecureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, mokSbState(Uint8Array.of(1)))]);
    expect(check(log, withoutSecureBoot)).to.deep.equal({ passed: true, reasons: [] });
  });
});
