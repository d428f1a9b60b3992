import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/**
 * Besides its MOK lists, shim logs two one-byte state variables into PCR 14 when they are set
 * (mok.c, mok_state_variables with MOK_VARIABLE_LOG, pcr 14; tpm_log_event: EV_IPL, data the name
 * with its NUL, digest the hash of the variable's data): `MokPolicy` (shim 15.8+, bit 0
 * MOK_POLICY_REQUIRE_NX) and `MokSBState` (1: validation disabled, also recorded in PCR 7).
 */

const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
const secureBoot = new CraftedLog(bytes);
const refstate = createRefstate(secureBoot.parsed);
const mokList = secureBoot.parsed.events.findIndex((e) => e.pcrIndex === 14 && Buffer.from(e.untrustedData).toString('latin1') === 'MokList\0');

/** A PCR 14 shim record: its text `name` and NUL, its digests those of `measured`. */
function shimLog(name: string, measured: Uint8Array): Buffer {
  const crafted = new CraftedLog(Buffer.concat([bytes, secureBoot.encode(14, ev.EV_IPL, Buffer.from(`${name}\0`, 'latin1'))]));
  const last = crafted.parsed.events.length - 1;
  return crafted.edit(last, crafted.withDigestsOf(last, Buffer.from(measured).toString('latin1')));
}

function check(log: Buffer) {
  const result = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(result.replay?.ok, 'the edited log replays to what the TPM would quote').to.equal(true);
  return { passed: result.passed, reasons: result.failures.map((f) => `${String(f.context.component)}: ${String(f.context.reason)}`) };
}

describe('mb policy: shim state bytes in PCR 14 (MokPolicy, MokSBState)', () => {
  for (const name of ['MokPolicy', 'MokSBState']) {
    for (const value of [0, 1]) {
      it(`${name} measured once as the byte ${value} passes`, () => {
        expect(check(shimLog(name, Uint8Array.of(value)))).to.deep.equal({ passed: true, reasons: [] });
      });
    }

    it(`${name} measured as anything but one byte 0 or 1 fails`, () => {
      const { passed, reasons } = check(shimLog(name, Uint8Array.of(1, 0)));
      expect(passed).to.equal(false);
      expect(reasons).to.deep.equal([`mokdig: ${name} is not the one byte (0 or 1) shim measures for it`]);
    });

    it(`${name} measured twice fails`, () => {
      const once = shimLog(name, Uint8Array.of(1));
      const twice = new CraftedLog(once);
      const last = twice.parsed.events.length - 1;
      const { passed, reasons } = check(Buffer.concat([once, twice.relabel(last, ev.EV_IPL)]));
      expect(passed).to.equal(false);
      expect(reasons).to.deep.equal([`mokdig: ${name} is measured 2 times`]);
    });

    it(`a MokList the refstate does not allow renamed ${name}, and the good one extended at runtime, fails`, () => {
      const rogue = new CraftedLog(secureBoot.edit(mokList, secureBoot.withDigestsOf(mokList, 'a rogue MOK list')));
      const renamed = rogue.edit(mokList, rogue.withData(mokList, Buffer.from(`${name}\0`, 'latin1')), [secureBoot.relabel(mokList, ev.EV_IPL)]);
      const { passed, reasons } = check(renamed);
      expect(passed).to.equal(false);
      expect(reasons).to.deep.equal([`mokdig: ${name} is not the one byte (0 or 1) shim measures for it`]);
    });
  }

  it('the crafted records carry the digest of the byte (control)', () => {
    const log = parseEventLogInput(shimLog('MokPolicy', Uint8Array.of(1)));
    const last = log.events[log.events.length - 1];
    expect(Buffer.from(last?.digests.find((d) => d.alg.name === 'sha256')?.digest ?? []).toString('hex')).to.equal(createHash('sha256').update(Uint8Array.of(1)).digest('hex'));
  });
});
