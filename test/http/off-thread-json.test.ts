import { expect } from 'chai';
import { JsonReplyRefused, OffThreadJson } from '../../lib/http/off-thread-json.js';
import { MAX_REPLY_JSON_VALUES, readJsonBody } from '../../lib/http/repeated-member-json.js';

/** A quote reply's envelope with a long IMA list: what an agent may answer with (up to 64 MiB). */
function bigReply(lines: number): Buffer {
  const list = Array.from({ length: lines }, (_, i) => `10 ${'ab'.repeat(20)} ima-ng sha256:${'cd'.repeat(32)} /usr/bin/f${i}\n`).join('');
  return Buffer.from(JSON.stringify({ code: 200, status: 'Success', results: { quote: 'r', hash_alg: 'sha256', ima_measurement_list: list, 'ünï': 'cödé' } }));
}

/**
 * The worker thread the verifier's agent clients read replies over 1 MiB with: the value is
 * `readJsonBody`'s (so the round judges the same reply), a body `readJsonBody` refuses is refused the
 * same way, and a thread that ends fails its reads with a plain error, never a value.
 */
describe('http: OffThreadJson reads reply bodies in a worker thread', function () {
  this.timeout(30_000);
  let reader: OffThreadJson;

  beforeEach(function () {
    reader = new OffThreadJson();
  });

  afterEach(async function () {
    await reader.close();
  });

  it("gives readJsonBody's value, for a body that is a slice of a larger buffer too", async function () {
    const body = bigReply(20_000);
    const expected = readJsonBody(body);
    expect(await reader.read(Buffer.from(body), 10_000)).to.deep.equal(expected);
    const padded = Buffer.concat([Buffer.from('xx'), body]);
    expect(await reader.read(padded.subarray(2), 10_000)).to.deep.equal(expected);
  });

  it('refuses what readJsonBody refuses (not JSON, too many values) with JsonReplyRefused', async function () {
    const notJson = await reader.read(Buffer.from('{"code": 200,'), 10_000).then(() => undefined, (e: unknown) => e);
    expect(notJson).to.be.instanceOf(JsonReplyRefused);
    const values = Buffer.from(JSON.stringify({ results: Array.from({ length: MAX_REPLY_JSON_VALUES + 1 }, () => 0) }));
    const tooMany = await reader.read(values, 10_000).then(() => undefined, (e: unknown) => e);
    expect(tooMany).to.be.instanceOf(JsonReplyRefused);
    expect(() => readJsonBody(values)).to.throw((tooMany as Error).message);
  });

  it('fails the reads of a thread that ends with a plain error, and reads on with a new thread', async function () {
    const pending = reader.read(bigReply(50_000), 10_000).then(() => undefined, (e: unknown) => e);
    await reader.close();
    const error = await pending;
    expect(error).to.be.instanceOf(Error).and.not.instanceOf(JsonReplyRefused);
    expect((error as Error).message).to.include('the JSON reply worker ended');
    expect(await reader.read(Buffer.from('{"a": 1}'), 10_000)).to.deep.equal({ a: 1 });
  });
});
