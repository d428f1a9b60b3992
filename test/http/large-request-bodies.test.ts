import { IsOptional, IsString } from 'class-validator';
import { expect } from 'chai';
import { serverApiVersionPolicy } from '../../lib/http/api-version.js';
import { ok } from '../../lib/http/envelope.js';
import { createService, type KeylimeService } from '../../lib/http/keylime-service.js';
import { HOSTILE_BODIES, paddedPast1MiB } from './hostile-json-bodies.js';

class NoteBody {
  @IsString()
  note!: string;

  @IsOptional()
  @IsString()
  pad?: string;
}

/**
 * A service parses a body over 1 MiB in a worker thread (`KeylimeService.largeBodies`) with the
 * checks it runs on the event loop, so every refusal is the same reply whatever the body's size; a
 * smaller body is parsed on the event loop as before (no thread, no round trip); the threads start on
 * the first large body and end with the service.
 */
describe('http: request bodies over 1 MiB are parsed off the event loop, with the same checks and replies', function () {
  this.timeout(60_000);
  let service: KeylimeService;
  let seen: NoteBody[];

  beforeEach(function () {
    seen = [];
    service = createService({ name: 'test', apiVersions: serverApiVersionPolicy(), bodyLimit: 32 * 1024 * 1024 });
    service.route({
      method: 'POST',
      url: '/notes',
      body: NoteBody,
      handler: ({ body, reply }) => {
        seen.push(body);
        return ok(reply, { note: body.note, pad: body.pad?.length ?? 0 });
      },
    });
  });

  afterEach(async function () {
    await service.close();
  });

  async function post(payload: string): Promise<{ status: number; body: unknown }> {
    const reply = await service.app.inject({ method: 'POST', url: '/v2.6/notes', payload, headers: { 'content-type': 'application/json' } });
    return { status: reply.statusCode, body: reply.json() };
  }

  it('parses a small body on the event loop and starts no thread', async function () {
    expect(await post(JSON.stringify({ note: 'ünï', pad: 'x'.repeat(1000) }))).to.deep.equal({ status: 200, body: { code: 200, status: 'Success', results: { note: 'ünï', pad: 1000 } } });
    expect(service.largeBodies.threadCount).to.equal(0);
  });

  it('hands the handler the same value for a body over 1 MiB, parsed in a thread, and ends the thread when the service closes', async function () {
    const pad = 'é'.repeat(1024 * 1024);
    expect(await post(JSON.stringify({ note: 'ünï', pad }))).to.deep.equal({ status: 200, body: { code: 200, status: 'Success', results: { note: 'ünï', pad: pad.length } } });
    expect(seen[0]?.pad).to.equal(pad);
    expect(service.largeBodies.threadCount).to.equal(1);
    await service.close();
    expect(service.largeBodies.threadCount).to.equal(0);
  });

  it('answers a 500 envelope, never the handler, when the thread parsing the body ends before answering', async function () {
    // 24 MiB of escaped quotes: a fifth of a second or more to count and parse, so the thread is ended mid-parse.
    const replying = post(JSON.stringify({ note: '"'.repeat(12 * 1024 * 1024) }));
    while (service.largeBodies.threadCount === 0) await new Promise((resolve) => setImmediate(resolve));
    await service.largeBodies.close();
    expect(await replying).to.deep.equal({ status: 500, body: { code: 500, status: 'Internal Server Error', results: {} } });
    expect(seen).to.deep.equal([]);
  });

  for (const [what, text] of HOSTILE_BODIES) {
    it(`refuses a body over 1 MiB with ${what} with the very reply it gives the small body`, async function () {
      const small = await post(text);
      expect(small.status).to.equal(400);
      expect(service.largeBodies.threadCount).to.equal(0);
      expect(await post(paddedPast1MiB(text))).to.deep.equal(small);
      expect(service.largeBodies.threadCount, 'the large body went to a thread').to.equal(1);
      expect(seen).to.deep.equal([]);
    });
  }
});
