import { expect } from 'chai';
import { JsonReplyRefused, JsonReplyUnread, OFF_THREAD_REPLY_BYTES, OffThreadJson, waitingRepliesFor, type OffThreadJsonOptions } from '../../lib/http/off-thread-json.js';
import { ReplyBudget } from '../../lib/http/reply-budget.js';
import { MAX_REPLY_JSON_VALUES, readJsonBody } from '../../lib/http/repeated-member-json.js';
import { paddedPast1MiB } from './hostile-json-bodies.js';

const FAULTY_WORKER = new URL('./fixtures/faulty-off-thread-worker.js', import.meta.url);

/** A quote reply's envelope with a long IMA list: what an agent may answer with (up to 64 MiB). */
function bigReply(lines: number): Buffer {
  const list = Array.from({ length: lines }, (_, i) => `10 ${'ab'.repeat(20)} ima-ng sha256:${'cd'.repeat(32)} /usr/bin/f${i}\n`).join('');
  return Buffer.from(JSON.stringify({ code: 200, status: 'Success', results: { quote: 'r', hash_alg: 'sha256', ima_measurement_list: list, 'ünï': 'cödé' } }));
}

/** A body the faulty thread acts on (`"hangNow"`, `"exitNow"`, `"throwNow"`) or answers, past 1 MiB. */
function padded(text: string): Buffer {
  return Buffer.from(paddedPast1MiB(text));
}

const outcome = (promise: Promise<unknown>): Promise<unknown> => promise.then((value) => ({ value }), (error: unknown) => error);

/**
 * The worker threads the verifier's agent clients read replies over 1 MiB with: the value is
 * `readJsonBody`'s (so the round judges the same reply), a body `readJsonBody` refuses is refused the
 * same way; a thread that ends, a parse past the time bound (its thread ended and replaced) and a read
 * past the bounded queue fail with JsonReplyUnread, never a value.
 */
describe('http: OffThreadJson reads reply bodies in a bounded pool of worker threads', function () {
  this.timeout(30_000);
  const readers: OffThreadJson[] = [];
  const readerOf = (options: OffThreadJsonOptions = {}): OffThreadJson => {
    const reader = new OffThreadJson(options);
    readers.push(reader);
    return reader;
  };

  after(async function () {
    await Promise.all(readers.map((reader) => reader.close()));
  });

  it("gives readJsonBody's value, for a body that is a slice of a larger buffer too", async function () {
    const reader = readerOf();
    const body = bigReply(20_000);
    const expected = readJsonBody(body);
    expect(await reader.read(Buffer.from(body))).to.deep.equal(expected);
    const padding = Buffer.concat([Buffer.from('xx'), body]);
    expect(await reader.read(padding.subarray(2))).to.deep.equal(expected);
  });

  it('refuses what readJsonBody refuses (not JSON, too many values) with JsonReplyRefused', async function () {
    const reader = readerOf();
    expect(await outcome(reader.read(Buffer.from('{"code": 200,')))).to.be.instanceOf(JsonReplyRefused);
    const values = Buffer.from(JSON.stringify({ results: Array.from({ length: MAX_REPLY_JSON_VALUES + 1 }, () => 0) }));
    const tooMany = await outcome(reader.read(values));
    expect(tooMany).to.be.instanceOf(JsonReplyRefused);
    expect(() => readJsonBody(values)).to.throw((tooMany as Error).message);
  });

  for (const [word, how] of [['exitNow', 'exits'], ['throwNow', 'throws']] as const) {
    it(`fails the read of a thread that ${how} with JsonReplyUnread, and reads on with a new thread`, async function () {
      const reader = readerOf({ script: FAULTY_WORKER });
      const failed = await outcome(reader.read(padded(`"${word}"`)));
      expect(failed).to.be.instanceOf(JsonReplyUnread);
      expect((failed as Error).message).to.include('the JSON reply worker ended');
      expect(await reader.read(padded('{"a": [1]}'))).to.deep.equal({ a: [1] });
    });
  }

  it('fails a parse past its time bound with JsonReplyUnread and ends its thread; the waiting read gets a new thread', async function () {
    const reader = readerOf({ timeoutMs: 2_000, script: FAULTY_WORKER });
    const stuck = outcome(reader.read(padded('"hangNow"')));
    const [hungThread] = reader.threadIds;
    const waiting = reader.read(padded('{"b": 2}'));
    const failed = await stuck;
    expect(failed).to.be.instanceOf(JsonReplyUnread);
    expect((failed as Error).message).to.include('not parsed within 2000 ms');
    expect(await waiting).to.deep.equal({ b: 2 });
    expect(reader.threadIds).to.have.lengthOf(1).and.not.include(hungThread);
  });

  it('is sized by the verifier from its reply budget so that it never refuses a reply the budget lets be read (waitingRepliesFor)', function () {
    for (const budgetBytes of [1, OFF_THREAD_REPLY_BYTES, OFF_THREAD_REPLY_BYTES + 1, 128 * 1024 * 1024, 200 * 1024 * 1024 + 3]) {
      // The smallest replies read in the thread, each claiming its length: the most of them the budget grants at once.
      const budget = new ReplyBudget(budgetBytes);
      let granted = 0;
      while (budget.reserve(OFF_THREAD_REPLY_BYTES + 1, () => undefined).granted) granted += 1;
      expect(granted, `a budget of ${budgetBytes} bytes`).to.be.at.least(1).and.at.most(waitingRepliesFor(budgetBytes));
    }
  });

  it('queues at most maxWaiting reads behind its threads and fails the next at once with JsonReplyUnread; close fails the rest', async function () {
    const reader = readerOf({ threads: 1, maxWaiting: 1, timeoutMs: 60_000, script: FAULTY_WORKER });
    const parsing = outcome(reader.read(padded('"hangNow"')));
    const waiting = outcome(reader.read(padded('{}')));
    const refused = await outcome(reader.read(padded('{}')));
    expect(refused).to.be.instanceOf(JsonReplyUnread);
    expect((refused as Error).message).to.include('too many large JSON replies');
    expect(reader.threadIds).to.have.lengthOf(1);
    await reader.close();
    for (const failed of await Promise.all([parsing, waiting])) expect(failed).to.be.instanceOf(JsonReplyUnread);
    expect(await outcome(reader.read(padded('{}')))).to.be.instanceOf(JsonReplyUnread);
    expect(reader.threadIds).to.deep.equal([]);
  });
});
