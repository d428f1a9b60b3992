import { request as httpRequest } from 'node:http';
import { expect } from 'chai';
import { parseRequestBody } from '../../lib/http/json-guard.js';
import { requestBodyText } from '../../lib/http/request-body-text.js';
import { PUSH_MAX_JSON_VALUES } from '../../lib/verifier/push/push-routes.js';
import { watchMainThreadStalls } from '../helpers/event-loop-stalls.js';
import { BOOT_LOG, JSON_API, usePushVerifier } from './helpers/push-verifier.js';

/** IMA lines of the evidence: with the boot log, a phase 2 body of about 29 MiB. */
const IMA_LINES = 38_000;

/**
 * A phase 2 evidence body as an agent sends it (a quote, the boot log, the IMA list from entry 0),
 * `imaLines` long, each line naming a file of 300 `"` — escaped in JSON, the costliest text per byte
 * to count and parse that the DTO accepts (about four times a plain log's): what an agent holding a
 * token may send to hold the event loop longest.
 */
function evidenceBody(imaLines: number, bootLogCopies: number): Buffer {
  const entries = Array.from({ length: imaLines }, (_, i) => `10 ${(i % 251).toString(16).padStart(2, '0').repeat(20)} ima-ng sha256:${'cd'.repeat(32)} /tmp/${'"'.repeat(300)}\n`).join('');
  const bootLog = Buffer.concat(Array.from({ length: bootLogCopies }, () => BOOT_LOG)).toString('base64');
  const quote = { message: Buffer.alloc(120, 1).toString('base64'), signature: Buffer.alloc(256, 2).toString('base64'), subject_data: Buffer.alloc(800, 3).toString('base64') };
  return Buffer.from(
    JSON.stringify({
      data: {
        type: 'attestation',
        attributes: {
          evidence_collected: [
            { evidence_class: 'certification', evidence_type: 'tpm_quote', data: quote },
            { evidence_class: 'log', evidence_type: 'uefi_log', data: { entries: bootLog } },
            { evidence_class: 'log', evidence_type: 'ima_log', data: { entries, entry_count: imaLines } },
          ],
        },
      },
    }),
  );
}

/** The CPU ms of parsing `body` as the service did on the event loop before (decode, value count, JSON.parse, guard). */
function onLoopParseMs(body: Buffer): number {
  const before = process.cpuUsage();
  parseRequestBody(requestBodyText(body), PUSH_MAX_JSON_VALUES);
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / 1000;
}

/**
 * Issue 13: a push agent's phase 2 body may be 32 MiB (its whole IMA list), and parsing it on the
 * event loop held every other request, pull round and /health for the half second or more JSON.parse
 * takes. A body over 1 MiB is parsed in a worker thread: while it is, the event loop keeps running
 * (timers, /health); the reply is the one the same evidence gets when small.
 */
describe('push evidence PATCH: a 29 MiB body is parsed off the event loop (real PostgreSQL)', function () {
  this.timeout(120_000);
  const push = usePushVerifier();
  let path: string;
  let authorization: string;

  before(async function () {
    ({ path, authorization } = await push.evidencePathWithToken());
  });

  function send(method: 'GET' | 'PATCH', url: string, body?: Buffer): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const call = httpRequest(`${push.url}${url}`, { method, headers: { 'content-type': JSON_API, authorization }, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      call.on('error', reject);
      call.end(body);
    });
  }

  it('keeps serving a 1 ms timer and /health while it is parsed, and answers as it answers the same evidence when small', async function () {
    const small = await send('PATCH', path, evidenceBody(100, 1));
    const large = evidenceBody(IMA_LINES, 30);
    expect(large.length).to.be.within(26 * 1024 * 1024, 32 * 1024 * 1024);
    const parseMs = Math.min(onLoopParseMs(large), onLoopParseMs(large));

    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 1);
    let healthAnswers = 0;
    let sending = true;
    const polling = (async () => {
      while (sending) {
        if ((await send('GET', '/health')).status > 0) healthAnswers += 1;
      }
    })();
    const watch = watchMainThreadStalls();
    const answer = await send('PATCH', path, large);
    const worstStallMs = watch.stop();
    sending = false;
    await polling;
    clearInterval(ticker);

    expect(answer).to.deep.equal(small);
    expect(turns, 'timer turns while the body was sent and parsed').to.be.above(5);
    expect(healthAnswers, '/health answers meanwhile').to.be.above(0);
    // On the event loop the parse was one stall of its whole cost; off it, what is left (reading the
    // body, taking the value from the thread) is a fraction of that.
    expect(worstStallMs, `worst event-loop stall, ms (parsing on the event loop costs ${parseMs.toFixed(0)} ms)`).to.be.below(parseMs / 3);
  });
});
