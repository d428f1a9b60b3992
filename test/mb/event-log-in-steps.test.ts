import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { EventLogParseError } from '../../lib/bytes/parse-errors.js';
import { decodeEventLogBase64, decodeEventLogBase64Stepwise } from '../../lib/mb/event-log-input.js';
import { MAX_EVENT_LOG_EVENTS, parseEventLog, parseEventLogStepwise } from '../../lib/mb/parse-event-log.js';
import { finish, type Stepwise } from '../../lib/ima/stepwise.js';
import { grownBootLogOfEvents } from './huge-boot-log.js';

/** Characters the decoder takes per step (`BASE64_CHARS_PER_STEP`): the cases below straddle its pieces. */
const PIECE = 1024 * 1024;

/** What the decoder did in one go before it went in pieces: the reference for every case. */
function decodedInOneGo(text: string): Uint8Array | 'refused' {
  const body = text.replace(/\s+/g, '');
  return body.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(body) ? 'refused' : new Uint8Array(Buffer.from(body, 'base64'));
}

/** The work's result and the pauses it made on the way, or the error it threw. */
function run<T>(work: Stepwise<T>): { readonly value?: T; readonly error?: unknown; readonly pauses: number } {
  let pauses = 0;
  try {
    for (let step = work.next(); ; step = work.next()) {
      if (step.done === true) return { value: step.value, pauses };
      pauses += 1;
    }
  } catch (error) {
    return { error, pauses };
  }
}

function expectSameAsOneGo(text: string, what: string): void {
  const expected = decodedInOneGo(text);
  const got = run(decodeEventLogBase64Stepwise(text));
  if (expected === 'refused') {
    expect(got.error, what).to.be.instanceOf(EventLogParseError);
    expect((got.error as Error).message, what).to.equal('base64: at offset 0: the event log is not valid base64');
  } else {
    expect(got.error, what).to.equal(undefined);
    expect(Buffer.from(got.value as Uint8Array).equals(Buffer.from(expected)), what).to.equal(true);
  }
}

describe('the boot log decoded and parsed in steps', function () {
  this.timeout(60_000);
  const bytes = randomBytes(3 * PIECE);
  const base64 = bytes.toString('base64');

  it('decodes a text of several pieces to the bytes of one go, pausing between pieces', function () {
    const got = run(decodeEventLogBase64Stepwise(base64));
    expect(got.pauses).to.equal(4);
    expect(Buffer.from(got.value as Uint8Array).equals(bytes)).to.equal(true);
    expect(Buffer.from(decodeEventLogBase64(base64)).equals(bytes)).to.equal(true);
  });

  it('decodes 4-character groups that straddle two pieces (whitespace shifts them), as one go does', function () {
    for (const shift of [1, 2, 3, 5]) {
      expectSameAsOneGo(`${' '.repeat(shift)}${base64.slice(0, PIECE)}\n${base64.slice(PIECE)}`, `${shift} spaces before`);
    }
    expectSameAsOneGo(base64.replace(/(.{76})/g, '$1\r\n'), 'lines of 76 characters, as MIME writes them');
  });

  it('takes padding split over two pieces, and refuses a third "=" or padding before the end', function () {
    const one = randomBytes(3 * (PIECE / 4) - 2).toString('base64');
    expect(one.endsWith('==')).to.equal(true);
    const split = `${one.slice(0, -1)}${' '.repeat(PIECE - one.length + 1)}${one.slice(-1)}`;
    expect(split.length).to.be.above(PIECE);
    expectSameAsOneGo(split, '"=" ending one piece, "=" beginning the next');
    expectSameAsOneGo(`${split}=`, 'three "="');
    expectSameAsOneGo(`${one}${' '.repeat(PIECE)}AAAA`, 'characters after the padding, in the next piece');
    expectSameAsOneGo(`${base64.slice(0, PIECE - 4)}AA==${base64.slice(PIECE)}`, 'padding at the end of the first piece, characters after it');
  });

  it('refuses a text cut in the middle of a group, a character that is not base64 in a later piece, and random bytes', function () {
    expectSameAsOneGo(base64.slice(0, -1), 'the last character cut');
    expectSameAsOneGo(base64.slice(0, 2 * PIECE + 2), 'cut two characters into a group of the third piece');
    expectSameAsOneGo(`${base64.slice(0, 2 * PIECE + 5)}-${base64.slice(2 * PIECE + 6)}`, 'base64url "-" in the third piece');
    expectSameAsOneGo(`${base64.slice(0, PIECE + 9)}\u00e9${base64.slice(PIECE + 10)}`, 'a non-ASCII letter in the second piece');
    for (let i = 0; i < 20; i += 1) {
      expectSameAsOneGo(randomBytes(PIECE + 1000 * i).toString('latin1'), `random bytes ${i}`);
    }
    expectSameAsOneGo('', 'an empty text');
    expectSameAsOneGo(' \n\t ', 'whitespace only');
  });

  describe('a log of the most events a boot log may hold, parsed in steps', function () {
    const grown = grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS);
    const whole = parseEventLog(grown);

    it('parses to the log of one go, pausing between chunks of events', function () {
      const got = run(parseEventLogStepwise(grown));
      expect(got.pauses).to.be.above(whole.events.length / 2048);
      expect(got.value).to.deep.equal(whole);
    });

    it('refuses a log cut in the middle of an event, or of an event header, as one go does (the error says where)', function () {
      for (const cut of [7, 30, 50, whole.events[whole.events.length - 1]?.untrustedData.length ?? 0]) {
        const truncated = grown.subarray(0, grown.length - cut);
        const got = run(parseEventLogStepwise(truncated));
        expect(got.error, `cut ${cut}`).to.be.instanceOf(EventLogParseError);
        expect(got.pauses, `cut ${cut}: it paused on the way`).to.be.above(MAX_EVENT_LOG_EVENTS / 512);
        expect(() => parseEventLog(truncated)).to.throw(EventLogParseError, (got.error as Error).message);
        expect((got.error as Error).message).to.match(/TCG_PCR_EVENT2\[\d+\]/);
      }
    });

    it('refuses random bytes after the real log, and random bytes alone, with a typed error', function () {
      for (let i = 0; i < 10; i += 1) {
        const tail = randomBytes(64 * 1024 + i);
        const log = Buffer.concat([grown, tail]);
        expect(() => finish(parseEventLogStepwise(log)), `tail ${i}`).to.throw(EventLogParseError);
        expect(() => finish(parseEventLogStepwise(randomBytes(1024 * 1024))), `random ${i}`).to.throw(EventLogParseError);
      }
    });
  });
});
