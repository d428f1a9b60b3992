import { expect } from 'chai';
import { checkMeasuredBoot } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { CraftedLog, variableData, withVariableData } from './crafted-log.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

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

describe('mb policy: a dbx of many identical signatures is checked in linear time', () => {
  it('20,000 copies of one dbx signature are evaluated well under the time a quadratic index took (27 s)', () => {
    const crafted = new CraftedLog(Buffer.from(vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-secureboot')));
    const refstate = createRefstate(crafted.parsed);
    const i = crafted.variableIndex('dbx');
    const dbx = crafted.event(i);
    const data = withVariableData(dbx, repeatedSignature(variableData(dbx), 20_000));
    const log = crafted.edit(i, crafted.encode(7, ev.EV_EFI_VARIABLE_DRIVER_CONFIG, data));

    const started = process.hrtime.bigint();
    const check = checkMeasuredBoot({ eventLog: new Uint8Array(log), quotedPcrs: selfQuote(parseEventLogInput(log)), refstate });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;

    expect(check.replay?.ok).to.equal(true);
    // The refstate requires the log's 371 revocations: the one repeated is found, the others are not.
    expect(check.failures.map((f) => f.context.reason)).to.deep.equal(['dbx lacks 370 revocation(s) the refstate requires']);
    expect(ms, `${ms.toFixed(0)} ms`).to.be.below(5000);
  });
});
