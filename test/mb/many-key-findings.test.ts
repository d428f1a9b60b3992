import { expect } from 'chai';
import { checkMeasuredBoot, checkMeasuredBootStepwise, type MeasuredBootCheck } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import { MAX_KEY_VARIABLE_LISTS, MAX_KEY_VARIABLE_SIGNATURES } from '../../lib/mb/internal/boot-components.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { LISTED_EVENTS } from '../../lib/mb/internal/policy-finding.js';
import { hasSignatureListsShape, parseSignatureLists, parseUefiVariable } from '../../lib/mb/internal/uefi-variable.js';
import { EventLogParseError } from '../../lib/bytes/parse-errors.js';
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

/** `count` EFI_SIGNATURE_LISTs of one signature each. */
function oneSignatureLists(count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => ownerOnlySignatures(1).fill(i % 256, 28, 29)));
}

/** The secure-boot vector's log with its db replaced by `count` signatures the refstate does not allow (one list, or `count` lists), checked against its own quote. */
function checkWithDbOf(count: number, lists: 'one list' | 'a list each' = 'one list'): MeasuredBootCheck {
  const crafted = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
  const refstate = createRefstate(crafted.parsed);
  const i = crafted.variableIndex('db');
  const data = withVariableData(crafted.event(i), lists === 'one list' ? ownerOnlySignatures(count) : oneSignatureLists(count));
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

  it('one list past the bound on lists is refused the same way; lists up to it are read', function () {
    expect(dbReasons(checkWithDbOf(MAX_KEY_VARIABLE_LISTS + 1, 'a list each'))).to.deep.equal([
      `db is not a list of EFI_SIGNATURE_LISTs: at offset ${28 * MAX_KEY_VARIABLE_LISTS + 16 * MAX_KEY_VARIABLE_LISTS}: more than ${MAX_KEY_VARIABLE_LISTS} EFI_SIGNATURE_LISTs`,
    ]);
    expect(dbReasons(checkWithDbOf(MAX_KEY_VARIABLE_LISTS, 'a list each')).at(-1)).to.equal(
      `db holds ${MAX_KEY_VARIABLE_LISTS - LISTED_EVENTS} more key(s) the refstate does not allow (the first ${LISTED_EVENTS} listed)`,
    );
  });

  it('signatures up to the bound, none allowed: the first are listed, then the count of the rest', function () {
    expect(dbReasons(checkWithDbOf(MAX_KEY_VARIABLE_SIGNATURES))).to.deep.equal([
      ...Array.from({ length: LISTED_EVENTS }, () => 'db holds a key the refstate does not allow'),
      `db holds ${MAX_KEY_VARIABLE_SIGNATURES - LISTED_EVENTS} more key(s) the refstate does not allow (the first ${LISTED_EVENTS} listed)`,
    ]);
  });
});

/** Whether `parseSignatureLists` parses `data`. */
function parses(data: Uint8Array): boolean {
  try {
    parseSignatureLists(data);
    return true;
  } catch (error) {
    if (error instanceof EventLogParseError) return false;
    throw error;
  }
}

/**
 * A db measured as EV_EFI_VARIABLE_AUTHORITY counts as a db measurement when its data is signature
 * lists, and that was asked by parsing every signature, several times per event: one such event of
 * 240,000 signatures appended by the node held the event loop 3 to 14 s in one step of the sliced
 * check, every round. The lists' shape is now checked from their headers alone.
 */
describe('mb policy: whether a PCR 7 event holds signature lists is read from the lists\' headers', function () {
  this.timeout(60_000);

  it('answers as parsing does, for real lists, their truncations and edits, and random bytes', function () {
    const crafted = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
    const real = ['db', 'dbx', 'KEK', 'PK'].map((name) => parseUefiVariable(crafted.event(crafted.variableIndex(name)).untrustedData).variableData);
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const cases: Uint8Array[] = [new Uint8Array(0), ownerOnlySignatures(3), ownerOnlySignatures(0)];
    for (const data of real) {
      cases.push(data, data.subarray(0, data.length - 1), data.subarray(0, 27), data.subarray(0, 28));
      for (let i = 0; i < 300; i++) {
        const edited = Buffer.from(data);
        // One byte of a list header's sizes, or anywhere.
        const at = i % 2 === 0 ? 16 + random(12) : random(edited.length);
        edited[at] = random(256);
        cases.push(edited, Buffer.concat([edited, Buffer.from([random(256)])]));
      }
    }
    for (let i = 0; i < 300; i++) cases.push(Buffer.from(Array.from({ length: random(80) }, () => random(256))));
    for (const data of cases) expect(hasSignatureListsShape(data), Buffer.from(data).toString('hex').slice(0, 120)).to.equal(parses(data));
    expect(cases.filter((data) => parses(data)).length, 'some cases parse').to.be.above(10);
  });

  it('a db EV_EFI_VARIABLE_AUTHORITY event of 240,000 signatures appended to the log: the policy fails on it, no step of the check holding the CPU long', function () {
    const bytes = Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'));
    const crafted = new CraftedLog(bytes);
    const refstate = createRefstate(crafted.parsed);
    const data = withVariableData(crafted.event(crafted.variableIndex('db')), ownerOnlySignatures(240_000));
    const log = Buffer.concat([bytes, crafted.encode(7, ev.EV_EFI_VARIABLE_AUTHORITY, data)]);
    expect(log.length).to.be.at.most(MAX_EVENT_LOG_BYTES);
    const work = checkMeasuredBootStepwise({ eventLog: log.toString('base64'), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
    let longestMs = 0;
    let step: IteratorResult<void, MeasuredBootCheck>;
    do {
      const before = process.cpuUsage();
      step = work.next();
      const spent = process.cpuUsage(before);
      longestMs = Math.max(longestMs, (spent.user + spent.system) / 1000);
    } while (step.done !== true);
    expect(step.value.passed).to.equal(false);
    expect(dbReasons(step.value)).to.include('db is measured 2 times');
    // CPU time, not the wall clock: about 0.1 s now; 3 s and more before (14 s on a loaded host).
    expect(longestMs, `${longestMs.toFixed(0)} ms`).to.be.below(1000);
  });
});
