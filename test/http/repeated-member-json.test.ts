import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { MAX_REPLY_JSON_VALUES, readJsonBody, RepeatedMemberJsonReader, RepeatedTexts } from '../../lib/http/repeated-member-json.js';
import { spyOnJsonParse } from './json-parse-spy.js';

/**
 * The boot-log reader must give exactly what `JSON.parse` gives for every body — the same value, or
 * the same failure — whether the remembered log repeats or not; only then may it skip decoding it.
 */
describe('http: reading a reply whose boot log repeats (RepeatedMemberJsonReader)', function () {
  const LOG = randomBytes(3000).toString('base64');
  const quoteBody = (log: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ code: 200, status: 'Success', results: { quote: 'rAAA', hash_alg: 'sha256', ...extra, mb_measurement_list: log } });

  /** A reader that has just read a reply carrying `LOG`. */
  const primed = (): RepeatedMemberJsonReader => {
    const reader = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], new RepeatedTexts());
    reader.read(Buffer.from(quoteBody(LOG)));
    return reader;
  };

  /** `read`'s answer against `JSON.parse`'s, for the same body. */
  const expectAsJsonParse = (reader: RepeatedMemberJsonReader, text: string | Buffer): unknown => {
    const body = typeof text === 'string' ? Buffer.from(text) : text;
    let expected: unknown;
    try {
      expected = readJsonBody(body);
    } catch (error) {
      expect(() => reader.read(body), text.toString()).to.throw(SyntaxError);
      return (error as Error).name;
    }
    const value = reader.read(body);
    expect(value, text.toString()).to.deep.equal(expected);
    return value;
  };

  /** The lengths of the texts `JSON.parse` was given while `run` ran. */
  const parsedLengths = (run: () => void): number[] => {
    const spy = spyOnJsonParse();
    try {
      run();
    } finally {
      spy.restore();
    }
    return spy.lengths;
  };

  it('reads a repeated log without parsing it again, and the rest of the body afresh', function () {
    const reader = primed();
    let second: { results: Record<string, unknown> } | undefined;
    const lengths = parsedLengths(() => {
      second = reader.read(Buffer.from(quoteBody(LOG, { nonce: 'b' }))) as { results: Record<string, unknown> };
    });
    expect(lengths).to.have.lengthOf(1);
    expect(lengths[0]).to.be.lessThan(200);
    expect(second).to.deep.equal(JSON.parse(quoteBody(LOG, { nonce: 'b' })));
    expect(Object.keys(second?.results ?? {})).to.deep.equal(['quote', 'hash_alg', 'nonce', 'mb_measurement_list']);
  });

  it('reads a log that changed (a reboot), one that differs in its last byte, or is longer or shorter, as sent', function () {
    const reader = primed();
    const last = LOG.at(-2) === 'A' ? 'B' : 'A';
    for (const log of [LOG.slice(0, -2) + last + '=', LOG + 'AAAA', LOG.slice(0, -4), randomBytes(3000).toString('base64'), LOG]) {
      expect((expectAsJsonParse(reader, quoteBody(log)) as { results: { mb_measurement_list: string } }).results.mb_measurement_list).to.equal(log);
    }
  });

  it('does not take the name inside another string, in a key that only ends with it, or at another depth', function () {
    const reader = primed();
    const bodies = [
      `{"code":200,"status":"Success","results":{"\\"mb_measurement_list":"${LOG}"}}`,
      `{"code":200,"status":"Success","results":{"x\\\\":1,"mb_measurement_list\\"":"${LOG}"}}`,
      `{"code":200,"status":"Success","results":{"inner":{"mb_measurement_list":"${LOG}"}}}`,
      `{"code":200,"status":"Success","results":["mb_measurement_list",":","${LOG}"]}`,
      `{"code":200,"status":"Success","mb_measurement_list":"${LOG}","results":{}}`,
    ];
    for (const body of bodies) {
      const value = expectAsJsonParse(reader, body) as { results: Record<string, unknown> };
      expect(Object.hasOwn(value.results, 'mb_measurement_list'), body.slice(0, 80)).to.equal(false);
    }
  });

  it('gives the last of duplicate members, however the duplicate spells the name', function () {
    const reader = primed();
    const head = `{"code":200,"status":"Success","results":{"mb_measurement_list":"${LOG}"`;
    for (const tail of [
      ',"mb_measurement_list":""}}',
      ',"mb_measurement_list":"other"}}',
      ',"mb\\u005fmeasurement_list":""}}',
      ',"mb_measurement_list" :""}}',
      '},"results":{"mb_measurement_list":""}}',
      '},"results":{}}',
    ]) {
      const value = expectAsJsonParse(reader, head + tail) as { results: Record<string, unknown> };
      expect(value.results['mb_measurement_list'], tail).to.not.equal(LOG);
    }
  });

  it('fails where JSON.parse fails, and keeps what JSON.parse makes of bytes that are not UTF-8', function () {
    const reader = primed();
    const good = quoteBody(LOG);
    for (const bad of [good.slice(0, -1), `${good.slice(0, -2)},}}`, good.replace('"code"', 'code'), `${good} x`, good.replace('"rAAA"', '"rA\u0001A"')]) {
      expect(expectAsJsonParse(reader, bad), bad.slice(0, 60)).to.equal('SyntaxError');
    }
    const latin = Buffer.concat([Buffer.from('{"code":200,"status":"\xff\xfe'), Buffer.from([0xc3]), Buffer.from(`","results":{"mb_measurement_list":"${LOG}"}}`)]);
    expectAsJsonParse(reader, latin);
  });

  it('remembers only plain text: a log with escapes or other than ASCII is read as sent, whatever bytes follow', function () {
    for (const odd of [`${LOG}\n"\\`, `${LOG}"x`, `${LOG}\u00e9`]) {
      const reader = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], new RepeatedTexts());
      expectAsJsonParse(reader, quoteBody(odd));
      expectAsJsonParse(reader, quoteBody(odd));
      // The remembered text's own characters as raw bytes: not JSON, or another string.
      const raw = Buffer.concat([Buffer.from('{"code":200,"status":"Success","results":{"mb_measurement_list":"'), Buffer.from(odd, 'latin1'), Buffer.from('"}}')]);
      expectAsJsonParse(reader, raw);
    }
  });

  it(`refuses a reply of more than ${MAX_REPLY_JSON_VALUES} JSON values without parsing it, whether its log repeats or not (hunt H5)`, function () {
    const reader = primed();
    const pad = Array.from({ length: MAX_REPLY_JSON_VALUES }, () => ({}));
    for (const log of [LOG, 'AAAA']) {
      const body = Buffer.from(quoteBody(log, { pad }));
      expect(parsedLengths(() => expect(() => reader.read(body)).to.throw(`body: holds more than ${MAX_REPLY_JSON_VALUES} JSON values`))).to.deep.equal([]);
    }
    expect(reader.read(Buffer.from(quoteBody(LOG, { pad: pad.slice(0, MAX_REPLY_JSON_VALUES - 8) })))).to.have.nested.property('results.mb_measurement_list', LOG);
  });

  it('answers as JSON.parse on 3,000 bodies built from the tokens that could mislead it', function () {
    const tokens = ['"', '\\', '\\"', '\\u005f', '\\u0022', 'mb_measurement_list', '"mb_measurement_list"', ':', ':"', '{', '}', '[', ']', ',', ' ', '"results"', '1', LOG];
    const reader = primed();
    const good = quoteBody(LOG);
    // Seeded (mulberry32), so a failure repeats; most edits land outside the log, where the reader's
    // conditions are tested (an edit inside it only makes a log that does not repeat).
    let seed = 0x5eed;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    let parsed = 0;
    for (let i = 0; i < 3000; i += 1) {
      let body = good;
      for (let edits = 1 + (i % 3); edits > 0; edits -= 1) {
        const log = body.indexOf(LOG);
        const outside = log >= 0 && random() < 0.9;
        const before = log + 1;
        const spot = Math.floor(random() * (outside ? body.length - LOG.length + 1 : body.length));
        const at = outside && spot >= before ? spot + LOG.length - 1 : spot;
        const token = tokens[Math.floor(random() * tokens.length)] as string;
        body = random() < 0.7 ? body.slice(0, at) + token + body.slice(at) : body.slice(0, at) + body.slice(at + 1 + Math.floor(random() * 4));
      }
      if (expectAsJsonParse(reader, body) !== 'SyntaxError') parsed += 1;
      // Keep the reader primed with LOG (a body it read whole may have changed what it remembers).
      reader.read(Buffer.from(good));
    }
    expect(parsed).to.be.greaterThan(100);
  });

  it('refuses a member name JSON can spell another way than \\u escapes (with "/" or "\\")', function () {
    for (const name of ['a/b', 'a\\b', 'a"b', 'a\nb', '']) {
      expect(() => new RepeatedMemberJsonReader(['results', name], new RepeatedTexts()), name).to.throw(TypeError);
    }
    expect(() => new RepeatedMemberJsonReader(['results', 'mb_measurement-list2'], new RepeatedTexts())).to.not.throw();
  });

  it('shares one copy of a log between the readers of a pool', function () {
    const pool = new RepeatedTexts();
    const one = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], pool);
    const two = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], pool);
    one.read(Buffer.from(quoteBody(LOG)));
    two.read(Buffer.from(quoteBody(LOG.slice(0))));
    const a = one.read(Buffer.from(quoteBody(LOG))) as { results: { mb_measurement_list: string } };
    const b = two.read(Buffer.from(quoteBody(LOG))) as { results: { mb_measurement_list: string } };
    expect(Object.is(a.results.mb_measurement_list, b.results.mb_measurement_list)).to.equal(true);
  });

  /** Whether `reader` read `body` with its remembered log (JSON.parse given only the short rest). */
  const readRepeated = (reader: RepeatedMemberJsonReader, body: Buffer): boolean => {
    const lengths = parsedLengths(() => reader.read(body));
    return lengths.length === 1 && (lengths[0] as number) < 1024;
  };

  it('remembers a log up to 256 KiB, and parses a longer one as sent every time', function () {
    const reader = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], new RepeatedTexts());
    const longest = Buffer.from(quoteBody(randomBytes(196_608).toString('base64')));
    const tooLong = Buffer.from(quoteBody(randomBytes(196_611).toString('base64')));
    reader.read(longest);
    expect(readRepeated(reader, longest)).to.equal(true);
    reader.read(tooLong);
    expect(readRepeated(reader, tooLong)).to.equal(false);
  });

  it('keeps the pool within its byte budget, dropping the least recently used logs, also from the readers', function () {
    const pool = new RepeatedTexts();
    const fleet = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], pool);
    const idle = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], pool);
    const hostile = new RepeatedMemberJsonReader(['results', 'mb_measurement_list'], pool);
    const fleetBody = Buffer.from(quoteBody(LOG));
    const idleBody = Buffer.from(quoteBody(randomBytes(3000).toString('base64')));
    fleet.read(fleetBody);
    idle.read(idleBody);
    // A new log of the longest remembered size every round: 128 of them fill the 64 MiB budget.
    const longest = randomBytes(196_608).toString('base64');
    for (let round = 0; round < 140; round += 1) {
      hostile.read(Buffer.from(quoteBody(round.toString().padStart(8, 'A') + longest.slice(8))));
      expect(readRepeated(fleet, fleetBody), `round ${round}`).to.equal(true);
    }
    expect(readRepeated(idle, idleBody)).to.equal(false);
  });
});
