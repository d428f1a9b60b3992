import { expect } from 'chai';
import { IronlimeError } from '../../interfaces/errors.js';
import { RequestValidationError, ServiceBusyError } from '../../lib/http/http-errors.js';
import { parseRequestBody } from '../../lib/http/json-guard.js';
import { OffThreadBodies, type OffThreadBodiesOptions } from '../../lib/http/off-thread-bodies.js';
import { requestBodyText } from '../../lib/http/request-body-text.js';
import { HOSTILE_BODIES, paddedPast1MiB } from './hostile-json-bodies.js';

const MIB = 1024 * 1024;
const FAULTY_WORKER = new URL('./fixtures/faulty-off-thread-worker.js', import.meta.url);

function padded(text: string): Buffer {
  return Buffer.from(paddedPast1MiB(text));
}

/** The error `parseRequestBody` throws on the event loop for `body`, or undefined. */
function onLoopError(body: Buffer, maxValues: number): unknown {
  try {
    parseRequestBody(requestBodyText(body), maxValues);
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * The threads a service parses request bodies over 1 MiB in: the value and the refusals are
 * `parseRequestBody`'s on the event loop; a thread that ends or sticks fails its body with a plain
 * error (a 500, never a value); the queue is bounded (503 past it); and close ends every thread.
 */
describe('http: OffThreadBodies parses large request bodies in worker threads', function () {
  this.timeout(60_000);
  const pools: OffThreadBodies[] = [];
  const poolOf = (options: OffThreadBodiesOptions = {}): OffThreadBodies => {
    const pool = new OffThreadBodies(options);
    pools.push(pool);
    return pool;
  };

  after(async function () {
    await Promise.all(pools.map((pool) => pool.close()));
  });

  it("gives parseRequestBody's value, for ASCII and UTF-8 bodies and a slice of a larger buffer", async function () {
    const pool = poolOf();
    const ascii = Buffer.from(JSON.stringify({ data: { entries: Array.from({ length: 40_000 }, (_, i) => `10 ${'ab'.repeat(20)} ima-ng sha256:${'cd'.repeat(32)} /usr/bin/f${i}\n`).join('') }, n: [1, -0, 2.5e10, null, true] }));
    const utf8 = Buffer.from(JSON.stringify({ 'ünï': 'cödé €'.repeat(400_000), lone: '\ud800' }));
    for (const body of [ascii, utf8]) {
      expect(body.length).to.be.above(MIB);
      const expected = parseRequestBody(requestBodyText(body), 512);
      expect(await pool.parse(Buffer.from(body), 512)).to.deep.equal(expected);
      const inLarger = Buffer.concat([Buffer.from('xx'), body]).subarray(2);
      expect(await pool.parse(inLarger, 512)).to.deep.equal(expected);
    }
  });

  for (const [what, text] of HOSTILE_BODIES) {
    it(`refuses a body with ${what} with the RequestValidationError parseRequestBody throws`, async function () {
      const body = padded(text);
      const expected = onLoopError(body, 512);
      expect(expected).to.be.instanceOf(RequestValidationError);
      const refused = await poolOf({ threads: 1 }).parse(Buffer.from(body), 512).then(() => undefined, (error: unknown) => error);
      expect(refused).to.be.instanceOf(RequestValidationError);
      const [got, wanted] = [refused as RequestValidationError, expected as RequestValidationError];
      expect({ message: got.message, location: got.location, detail: got.detail, code: got.code }).to.deep.equal({ message: wanted.message, location: wanted.location, detail: wanted.detail, code: wanted.code });
      expect((got.cause as Error | undefined)?.message).to.equal((wanted.cause as Error | undefined)?.message);
    });
  }

  for (const [word, how] of [['exitNow', 'exits'], ['throwNow', 'throws']] as const) {
    it(`fails the body of a thread that ${how} with a plain error (not a refusal, not a value), and parses on with a new thread`, async function () {
      const pool = poolOf({ threads: 1, script: FAULTY_WORKER });
      const failed = await pool.parse(padded(`"${word}"`), 512).then(() => undefined, (error: unknown) => error);
      expect(failed).to.be.instanceOf(Error).and.not.instanceOf(IronlimeError);
      expect((failed as Error).message).to.include('the request body worker ended');
      expect(await pool.parse(padded('{"a": [1]}'), 512)).to.deep.equal({ a: [1] });
    });
  }

  it('fails a body not parsed within the time bound, ends its thread, and serves the waiting one with a new thread', async function () {
    const pool = poolOf({ threads: 1, timeoutMs: 500, script: FAULTY_WORKER });
    const [stuck, waiting] = await Promise.all([pool.parse(padded('"hangNow"'), 512).then(() => undefined, (error: unknown) => error), pool.parse(padded('{"b": 2}'), 512)]);
    expect(stuck).to.be.instanceOf(Error).and.not.instanceOf(IronlimeError);
    expect((stuck as Error).message).to.include('not parsed within 500 ms');
    expect(waiting).to.deep.equal({ b: 2 });
    expect(pool.threadCount).to.equal(1);
  });

  it('runs at most its threads, queues at most maxWaiting bodies and refuses the next with ServiceBusyError (503, Retry-After); close fails the rest and ends every thread', async function () {
    const pool = poolOf({ threads: 2, maxWaiting: 1, timeoutMs: 60_000, script: FAULTY_WORKER });
    const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => 'parsed', (error: unknown) => error);
    const running = [outcome(pool.parse(padded('"hangNow"'), 512)), outcome(pool.parse(padded('"hangNow"'), 512))];
    const waiting = outcome(pool.parse(padded('{}'), 512));
    const refused = await outcome(pool.parse(padded('{}'), 512));
    expect(pool.threadCount).to.equal(2);
    expect(refused).to.be.instanceOf(ServiceBusyError);
    expect((refused as ServiceBusyError).httpStatus).to.equal(503);
    expect((refused as ServiceBusyError).retryAfterSeconds).to.equal(1);
    await pool.close();
    expect(pool.threadCount).to.equal(0);
    for (const failed of await Promise.all([...running, waiting])) expect(failed).to.be.instanceOf(Error).and.not.equal('parsed');
    expect(await outcome(pool.parse(padded('{}'), 512))).to.be.instanceOf(ServiceBusyError);
    expect(pool.threadCount).to.equal(0);
  });

  it('bounds the bytes of the bodies waiting, not only their count: a body that would wait past maxWaitingBytes is refused 503, unless it would wait alone', async function () {
    const pool = poolOf({ threads: 1, maxWaiting: 8, maxWaitingBytes: 5 * MIB, timeoutMs: 60_000, script: FAULTY_WORKER });
    const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => 'parsed', (error: unknown) => error);
    const ofMiB = (mib: number): Buffer => Buffer.from(JSON.stringify({ pad: 'x'.repeat(mib * MIB) }));
    const running = outcome(pool.parse(padded('"hangNow"'), 512));
    const alone = outcome(pool.parse(ofMiB(6), 512));
    expect(pool.bytesWaiting, 'a body larger than the bound waits when it waits alone').to.be.above(6 * MIB);
    const refused = await outcome(pool.parse(ofMiB(2), 512));
    expect(refused).to.be.instanceOf(ServiceBusyError);
    expect((refused as ServiceBusyError).httpStatus).to.equal(503);
    expect((refused as ServiceBusyError).retryAfterSeconds).to.equal(1);
    await pool.close();
    expect(pool.bytesWaiting).to.equal(0);
    for (const failed of await Promise.all([running, alone])) expect(failed).to.be.instanceOf(Error);

    const counted = poolOf({ threads: 1, maxWaiting: 8, maxWaitingBytes: 5 * MIB, timeoutMs: 60_000, script: FAULTY_WORKER });
    const stuck = outcome(counted.parse(padded('"hangNow"'), 512));
    const waiting = [outcome(counted.parse(ofMiB(2), 512)), outcome(counted.parse(ofMiB(2), 512))];
    expect(counted.bytesWaiting).to.be.within(4 * MIB, 5 * MIB);
    expect(await outcome(counted.parse(ofMiB(2), 512)), 'a third 2 MiB body would make 6 MiB wait').to.be.instanceOf(ServiceBusyError);
    expect(counted.bytesWaiting, 'the refused body is not counted').to.be.within(4 * MIB, 5 * MIB);
    await counted.close();
    for (const failed of await Promise.all([stuck, ...waiting])) expect(failed).to.be.instanceOf(Error);
  });
});
