import { expect } from 'chai';
import fc from 'fast-check';
import { EventLogParseError } from '../../lib/bytes/parse-errors.js';
import { LittleEndianWriter } from '../../lib/bytes/byte-writer.js';
import { untrustedBootEvents } from '../../lib/mb/boot-events.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { decodeEventContent } from '../../lib/mb/internal/event-content.js';
import { decodeEventLogBase64 } from '../../lib/mb/event-log-input.js';
import * as ev from '../../lib/mb/internal/event-types.js';
import { parseImageLoadEvent } from '../../lib/mb/internal/image-load-event.js';
import { MbRefstateError } from '../../lib/mb/mb-refstate.js';
import { EventLogTooLarge, MAX_EVENT_LOG_BYTES, MAX_EVENT_LOG_EVENTS, parseEventLog } from '../../lib/mb/parse-event-log.js';
import { grownBootLog, grownBootLogOfEvents } from './huge-boot-log.js';
import { replayEventLog } from '../../lib/mb/replay.js';
import { parseSignatureLists, parseUefiVariable } from '../../lib/mb/internal/uefi-variable.js';
import { verifyReplay } from '../../lib/mb/verify-replay.js';
import { selfQuote, vectorBytes } from './mb-vectors.js';

/** Parses, and if that works runs everything downstream: only our typed errors may come out. */
function parseAndUse(bytes: Uint8Array): void {
  let log;
  try {
    log = parseEventLog(bytes);
  } catch (error) {
    expect(error).to.be.instanceOf(EventLogParseError);
    return;
  }
  replayEventLog(log);
  verifyReplay(log, selfQuote(log));
  for (const alg of log.algorithms) {
    untrustedBootEvents(log, alg);
  }
  try {
    createRefstate(log, { withoutSecureBoot: true });
  } catch (error) {
    expect(error).to.be.instanceOf(MbRefstateError);
  }
}

/** End offsets of the events of a valid log: the only prefixes that are themselves valid logs. */
function eventEnds(bytes: Uint8Array): Set<number> {
  const log = parseEventLog(bytes);
  const starts = log.events.map((e) => e.offset).slice(1);
  return new Set([...starts, bytes.length]);
}

/** A crypto-agile header (Spec ID Event03) naming `algorithms` as [algId, digestSize] pairs. */
function specIdHeader(algorithms: readonly [number, number][], signature = 'Spec ID Event03'): LittleEndianWriter {
  const data = new LittleEndianWriter()
    .bytes(new Uint8Array(Buffer.from(signature.padEnd(16, '\0'), 'latin1')))
    .u32(0)
    .u8(0)
    .u8(2)
    .u8(0)
    .u8(2)
    .u32(algorithms.length);
  for (const [algId, size] of algorithms) {
    data.u16(algId).u16(size);
  }
  const body = data.u8(0).finish();
  return new LittleEndianWriter().u32(0).u32(ev.EV_NO_ACTION).zeros(20).u32(body.length).bytes(body);
}

describe('mb: malformed event logs throw EventLogParseError, never crash or hang', () => {
  const small: string[][] = [
    ['tpm2-tools', 'event.bin'],
    ['tpm2-tools', 'event-uefivar.bin'],
    ['tpm2-tools', 'specid-vendordata.bin'],
    ['tpm2-tools', 'event-sd-boot-fedora37.bin'],
    ['tpm2-tools', 'event-uefi-sha1-log.bin'],
    ['go-attestation', 'short_no_action_eventlog'],
  ];
  for (const parts of small) {
    it(`every proper prefix of ${parts.join('/')} throws, unless it ends exactly after an event`, () => {
      const bytes = vectorBytes(...parts);
      const ends = eventEnds(bytes);
      const full = parseEventLog(bytes).events.length;
      const wrong: string[] = [];
      for (let length = 0; length < bytes.length; length++) {
        const prefix = bytes.subarray(0, length);
        try {
          const events = parseEventLog(prefix).events.length;
          if (!ends.has(length) || events >= full) {
            wrong.push(`prefix ${length} parsed to ${events} events`);
          }
        } catch (error) {
          if (!(error instanceof EventLogParseError) || ends.has(length)) {
            wrong.push(`prefix ${length}: ${String(error)}`);
          }
        }
      }
      expect(wrong).to.deep.equal([]);
    });
  }

  it('sampled proper prefixes of the large logs behave the same', () => {
    for (const parts of [['keylime', 'measured_boot', 'binary_bios_measurements'], ['go-tpm-tools', 'eventlogs', 'gdc-host.bin']]) {
      const bytes = vectorBytes(...parts);
      const ends = eventEnds(bytes);
      fc.assert(
        fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), (length) => {
          const prefix = bytes.subarray(0, length);
          if (ends.has(length)) {
            parseEventLog(prefix);
          } else {
            expect(() => parseEventLog(prefix)).to.throw(EventLogParseError);
          }
        }),
        { numRuns: 300 },
      );
    }
  });

  it('refuses oversized lengths before allocating', () => {
    const sha1 = new LittleEndianWriter().u32(0).u32(ev.EV_S_CRTM_VERSION).zeros(20).u32(0xfffffff0).finish();
    expect(() => parseEventLog(sha1)).to.throw(EventLogParseError, 'TCG_PCR_EVENT[0]: at offset 32: need 4294967280 byte(s), 0 left');
    const agile = vectorBytes('tpm2-tools', 'event.bin').slice();
    const view = new DataView(agile.buffer);
    const second = parseEventLog(agile).events[1]?.offset ?? 0;
    view.setUint32(second + 8, 0xffffffff, true);
    expect(() => parseEventLog(agile)).to.throw(EventLogParseError, '4294967295 digests, but the Spec ID event lists 4 algorithm(s)');
    const manyAlgs = specIdHeader([[0x000b, 32]]).finish();
    new DataView(manyAlgs.buffer).setUint32(32 + 24, 0x7fffffff, true);
    expect(() => parseEventLog(manyAlgs)).to.throw(EventLogParseError, 'numberOfAlgorithms 2147483647 is not in 1..32');
  });

  it('refuses a wrong Spec ID signature, a wrong digest size and unlisted digest algorithms', () => {
    expect(() => parseEventLog(specIdHeader([[0x000b, 32]], 'Spec ID Event05').finish())).to.throw(EventLogParseError, 'unknown Spec ID signature "Spec ID Event05"');
    expect(() => parseEventLog(specIdHeader([[0x000b, 33]]).finish())).to.throw(EventLogParseError, 'sha256 digest size is 33, the algorithm registry says 32');
    expect(() => parseEventLog(specIdHeader([[0x000b, 32], [0x000b, 32]]).finish())).to.throw(EventLogParseError, 'algorithm 0xb is listed twice');
    const unlisted = specIdHeader([[0x000b, 32]]).u32(0).u32(ev.EV_SEPARATOR).u32(1).u16(0x0004).zeros(20).u32(0).finish();
    expect(() => parseEventLog(unlisted)).to.throw(EventLogParseError, 'digest algorithm 0x4 is not in the Spec ID event');
    const badPcr = specIdHeader([[0x000b, 32]]).u32(24).u32(ev.EV_SEPARATOR).u32(1).u16(0x000b).zeros(32).u32(0).finish();
    expect(() => parseEventLog(badPcr)).to.throw(EventLogParseError, 'PCR index 24 is not in 0..23');
  });

  it('sizes unknown algorithms from the Spec ID event, frames them, and does not replay them', () => {
    const separator = new Uint8Array(4);
    const log = parseEventLog(
      specIdHeader([[0x000b, 32], [0x00b0, 40]])
        .u32(7).u32(ev.EV_SEPARATOR).u32(2)
        .u16(0x000b).bytes(new Uint8Array(32).fill(1))
        .u16(0x00b0).bytes(new Uint8Array(40).fill(2))
        .u32(4).bytes(separator)
        .finish(),
    );
    expect(log.algorithms.map((a) => [a.name, a.digestSize])).to.deep.equal([['sha256', 32], ['alg_0x00b0', 40]]);
    expect(log.events[1]?.digests[1]?.digest).to.have.length(40);
    const replay = replayEventLog(log);
    expect([...replay.banks.keys()]).to.deep.equal(['sha256']);
    expect(replay.unreplayable).to.deep.equal([{ bank: 'alg_0x00b0', reason: 'no implementation of alg_0x00b0 is available' }]);
  });

  it('refuses a malformed or repeated StartupLocality event', () => {
    const locality = (value: number) => new LittleEndianWriter().u32(0).u32(ev.EV_NO_ACTION).zeros(20).u32(17)
      .bytes(new Uint8Array(Buffer.from('StartupLocality\0', 'latin1'))).u8(value);
    expect(parseEventLog(locality(3).finish()).startupLocality).to.equal(3);
    expect(() => parseEventLog(locality(7).finish())).to.throw(EventLogParseError, 'startup locality 7 is not 0, 3 or 4');
    const twice = new LittleEndianWriter().bytes(locality(3).finish()).bytes(locality(3).finish()).finish();
    expect(() => parseEventLog(twice)).to.throw(EventLogParseError, 'more than one StartupLocality event');
  });

  it('random bytes (3000 inputs): parse or EventLogParseError, and whatever parses is safe to use', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => parseAndUse(bytes)), { numRuns: 3000 });
  });

  it('a valid header followed by random bytes (2000 inputs)', () => {
    const header = specIdHeader([[0x0004, 20], [0x000b, 32]]).finish();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (tail) => parseAndUse(new Uint8Array([...header, ...tail]))),
      { numRuns: 2000 },
    );
  });

  it('real logs with random bytes overwritten (600 inputs)', () => {
    const logs = [vectorBytes('tpm2-tools', 'event-uefivar.bin'), vectorBytes('tpm2-tools', 'event-sd-boot-fedora37.bin')];
    fc.assert(
      fc.property(
        fc.nat({ max: logs.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        (which, edits) => {
          const bytes = (logs[which] as Uint8Array).slice();
          for (const [at, value] of edits) {
            bytes[at % bytes.length] = value;
          }
          parseAndUse(bytes);
        },
      ),
      { numRuns: 600 },
    );
  });

  it('event data decoders (2000 inputs each): typed errors only; decodeEventContent never throws', () => {
    const types = [
      ev.EV_EFI_VARIABLE_DRIVER_CONFIG, ev.EV_EFI_VARIABLE_AUTHORITY, ev.EV_EFI_BOOT_SERVICES_APPLICATION, ev.EV_IPL,
      ev.EV_SEPARATOR, ev.EV_EFI_PLATFORM_FIRMWARE_BLOB, ev.EV_EFI_PLATFORM_FIRMWARE_BLOB2, ev.EV_S_CRTM_VERSION, ev.EV_POST_CODE,
    ];
    const typed = (parse: () => unknown) => {
      try {
        parse();
      } catch (error) {
        expect(error).to.be.instanceOf(EventLogParseError);
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...types), (data, type) => {
        typed(() => parseUefiVariable(data));
        typed(() => parseSignatureLists(data));
        typed(() => parseImageLoadEvent(data));
        expect(decodeEventContent(type, data).kind).to.be.a('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('base64 text: decodes or throws EventLogParseError', () => {
    expect(() => decodeEventLogBase64('abc')).to.throw(EventLogParseError, 'the event log is not valid base64');
    expect(() => decodeEventLogBase64('ab=c')).to.throw(EventLogParseError);
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        try {
          decodeEventLogBase64(text);
        } catch (error) {
          expect(error).to.be.instanceOf(EventLogParseError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it(`oversized logs: ${MAX_EVENT_LOG_EVENTS} events parse, one more or over ${MAX_EVENT_LOG_BYTES} bytes is EventLogTooLarge, and base64 text far over that is refused undecoded`, () => {
    expect(parseEventLog(grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS)).events).to.have.length(MAX_EVENT_LOG_EVENTS);
    expect(() => parseEventLog(grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS + 1))).to.throw(EventLogTooLarge, `more than the ${MAX_EVENT_LOG_EVENTS} events`);
    const overBytes = new Uint8Array(MAX_EVENT_LOG_BYTES + 1);
    overBytes.set(grownBootLogOfEvents(200));
    expect(() => parseEventLog(overBytes)).to.throw(EventLogTooLarge, `${MAX_EVENT_LOG_BYTES + 1} bytes`);
    const text = Buffer.from(grownBootLog(3 * MAX_EVENT_LOG_BYTES)).toString('base64');
    expect(() => decodeEventLogBase64(text)).to.throw(EventLogTooLarge, `${text.length} characters`);
  });
});
