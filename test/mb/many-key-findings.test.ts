import { expect } from 'chai';
import { checkMeasuredBoot, type MeasuredBootCheck } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import { MAX_KEY_VARIABLE_SIGNATURES } from '../../lib/mb/internal/boot-components.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { LISTED_EVENTS } from '../../lib/mb/internal/policy-finding.js';
import { MAX_EVENT_LOG_BYTES } from '../../lib/mb/parse-event-log.js';
import { CraftedLog, withVariableData } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/** One EFI_SIGNATURE_LIST of `count` signatures of 16 bytes: an owner GUID each and no data. */
function ownerOnlySignatures(count: number): Buffer {
  const list = Buffer.alloc(28 + 16 * count);
  // EFI_CERT_X509_GUID: the type matters not, only that the refstate allows none of these.
  Buffer.from('a159c0a5e494a74a87b5ab155c2bf072', 'hex').copy(list, 0);
  list.writeUInt32LE(list.length, 16);
  list.writeUInt32LE(0, 20);
  list.writeUInt32LE(16, 24);
  for (let i = 0; i < count; i++) list.writeUInt32LE(i, 28 + 16 * i);
  return list;
}

/** The secure-boot vector's log with its db replaced by `count` signatures the refstate does not allow, checked against its own quote. */
function checkWithDbOf(count: number): MeasuredBootCheck {
  const crafted = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
  const refstate = createRefstate(crafted.parsed);
  const i = crafted.variableIndex('db');
  const data = withVariableData(crafted.event(i), ownerOnlySignatures(count));
  const log = crafted.edit(i, crafted.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, data));
  expect(log.length).to.be.at.most(MAX_EVENT_LOG_BYTES);
  const check = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
  expect(check.replay?.ok).to.equal(true);
  expect(check.passed).to.equal(false);
  return check;
}

function dbReasons(check: MeasuredBootCheck): string[] {
  return check.failures.filter((f) => f.context.component === 'db').map((f) => String(f.context.reason));
}

/**
 * A hostile node's db (PCR 7, which it can extend and so make its quote match) holding as many
 * signatures as a log under the size bound can (240,000 of 16 bytes). A finding per signature the
 * refstate does not allow, spread into one `push` call, overflowed the stack: the check threw a
 * RangeError (an internal error, a 500 from /verify/evidence) instead of failing the policy; and
 * reading and checking them all held the event loop some 6 s in one step of the stepwise check. A key
 * variable is read up to `MAX_KEY_VARIABLE_SIGNATURES` signatures, and the first keys not allowed are
 * listed, then their count.
 */
describe('mb policy: a key variable with hundreds of thousands of signatures fails the policy, it does not throw', function () {
  this.timeout(60_000);

  it('240,000 signatures in db: not read past the bound, the policy fails on db', function () {
    expect(dbReasons(checkWithDbOf(240_000))).to.deep.equal([
      `db is not a list of EFI_SIGNATURE_LISTs: EFI_SIGNATURE_LIST[0]: at offset 28: more signatures than the ${MAX_KEY_VARIABLE_SIGNATURES} left of the bound`,
    ]);
  });

  it('one signature past the bound is refused the same way', function () {
    expect(dbReasons(checkWithDbOf(MAX_KEY_VARIABLE_SIGNATURES + 1))).to.have.length(1).and.satisfy((reasons: string[]) => reasons[0]?.startsWith('db is not a list of EFI_SIGNATURE_LISTs'));
  });

  it('signatures up to the bound, none allowed: the first are listed, then the count of the rest', function () {
    expect(dbReasons(checkWithDbOf(MAX_KEY_VARIABLE_SIGNATURES))).to.deep.equal([
      ...Array.from({ length: LISTED_EVENTS }, () => 'db holds a key the refstate does not allow'),
      `db holds ${MAX_KEY_VARIABLE_SIGNATURES - LISTED_EVENTS} more key(s) the refstate does not allow (the first ${LISTED_EVENTS} listed)`,
    ]);
  });
});
