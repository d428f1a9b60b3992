import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * shim records in PCR 7 (EV_EFI_VARIABLE_AUTHORITY, after the separator) every shim variable that
 * verified or configured the boot, not only those of the shipped logs: `MokList` when an image is
 * verified by an enrolled MOK key or hash (shim.c check_allowlist: check_db_hash/check_db_cert
 * (L"MokList", SHIM_LOCK_GUID) -> tpm_measure_variable) and `SBAT` (shim 15.3/15.4, before it
 * became SbatLevel). `MokSBState` (validation disabled) is accepted here too but fails a refstate
 * with Secure Boot (`shim-validation-disabled.test.ts`).
 */

const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
const secureBoot = new CraftedLog(bytes);
const refstate = createRefstate(secureBoot.parsed);

/** UEFI_VARIABLE_DATA of a SHIM_LOCK_GUID variable (605dab50-e046-4300-abb6-3dd810dd8b23). */
function shimVariable(name: string, data: Uint8Array): Buffer {
  const guid = Buffer.from('50ab5d6046e00043abb63dd810dd8b23', 'hex');
  const sizes = Buffer.alloc(16);
  sizes.writeBigUInt64LE(BigInt(name.length), 0);
  sizes.writeBigUInt64LE(BigInt(data.length), 8);
  return Buffer.concat([guid, sizes, Buffer.from(name, 'utf16le'), data]);
}

function passes(name: string): { passed: boolean; reasons: string[] } {
  const record = secureBoot.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, shimVariable(name, Buffer.from('a MOK certificate')));
  const log = Buffer.concat([bytes, record]);
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  return { passed: result.passed, reasons: result.failures.map((f) => String(f.context.reason)) };
}

describe('mb policy: shim authority records of real boots pass', () => {
  for (const name of ['MokList', 'SBAT']) {
    it(`${name} (SHIM_LOCK_GUID) after the PCR 7 separator`, () => {
      const { passed, reasons } = passes(name);
      expect(reasons).to.deep.equal([]);
      expect(passed).to.equal(true);
    });
  }

  it('a variable shim does not record still fails (control)', () => {
    expect(passes('MokListX').reasons.some((r) => r.includes(':MokListX is not one the policy knows'))).to.equal(true);
  });
});
