import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import type { CheckedDocument } from '../../drivers/keylime/document-source.js';
import { fetchCheckedDocument, type FetchLimits } from '../../drivers/keylime/fetch-document.js';
import { rejection } from './driver-test-node.js';
import { closedPort } from '../helpers/ports.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n${'22'.repeat(32)} /usr/bin/ls\n`;
const SHA = createHash('sha256').update(ALLOWLIST).digest('hex');

function limits(overrides: Partial<FetchLimits> = {}): FetchLimits {
  return { timeoutMs: 2000, maxBytes: 4096, signal: new AbortController().signal, ...overrides };
}


describe('keylime driver: fetching policy documents', function () {
  let dir: string;
  let server: Server;
  let base: string;
  let hits: string[];

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-fetch-'));
    writeFileSync(path.join(dir, 'allowlist.txt'), ALLOWLIST);
    writeFileSync(path.join(dir, 'big.txt'), 'x'.repeat(5000));
    hits = [];
    server = createServer((request, response) => {
      hits.push(request.url ?? '');
      if (request.url === '/allowlist.txt') {
        response.end(ALLOWLIST);
      } else if (request.url === '/big') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        // Chunked (no content-length): the bound must hold while streaming.
        for (let i = 0; i < 10; i += 1) {
          response.write('y'.repeat(1000));
        }
        response.end();
      } else if (request.url === '/slow') {
        setTimeout(() => response.end(ALLOWLIST), 3000).unref();
      } else if (request.url === '/broken') {
        response.writeHead(503).end();
      } else if (request.url === '/busy' || request.url === '/stalled') {
        response.writeHead(request.url === '/busy' ? 429 : 408, { 'retry-after': '30' }).end();
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async function () {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (name: string, checksum: string | undefined = SHA): CheckedDocument => ({
    source: { kind: 'file', path: path.join(dir, name), field: 'keylime_allowlist' },
    checksum,
  });
  const url = (route: string, checksum: string | undefined = SHA): CheckedDocument => ({
    source: { kind: 'url', url: `${base}${route}`, field: 'keylime_allowlist' },
    checksum,
  });

  it('reads a local file whose checksum matches', async function () {
    const bytes = await fetchCheckedDocument(file('allowlist.txt'), limits());
    expect(Buffer.from(bytes).toString()).to.equal(ALLOWLIST);
  });

  it('downloads an http URL whose checksum matches', async function () {
    const bytes = await fetchCheckedDocument(url('/allowlist.txt'), limits());
    expect(Buffer.from(bytes).toString()).to.equal(ALLOWLIST);
    expect(hits).to.include('/allowlist.txt');
  });

  it('refuses a document whose sha256 is not the checksum, naming both digests', async function () {
    const wrong = 'ff'.repeat(32);
    for (const document of [file('allowlist.txt', wrong), url('/allowlist.txt', wrong)]) {
      const error = await rejection(fetchCheckedDocument(document, limits()));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).code).to.equal('ERR_INVALID_PARAMETER_VALUE');
      expect(error.message).to.equal(
        `driver_info.keylime_allowlist_checksum: the fetched keylime_allowlist has sha256 ${SHA}, not the expected ${wrong}; nothing was sent to the attestation service`,
      );
    }
  });

  it('accepts an unchecked document when no checksum is given', async function () {
    const bytes = await fetchCheckedDocument(file('allowlist.txt', undefined), limits());
    expect(bytes.length).to.equal(ALLOWLIST.length);
  });

  it('bounds the size of files and downloads', async function () {
    const big = await rejection(fetchCheckedDocument(file('big.txt', undefined), limits()));
    expect(big.message).to.equal('driver_info.keylime_allowlist: the document is larger than 4096 bytes');
    const streamed = await rejection(fetchCheckedDocument(url('/big', undefined), limits()));
    expect(streamed).to.be.instanceOf(InvalidParameterValue);
    expect(streamed.message).to.equal('driver_info.keylime_allowlist: the document is larger than 4096 bytes');
  });

  it('refuses a policy path naming a FIFO or a device without waiting on it', async function () {
    const fifo = path.join(dir, 'policy.fifo');
    execFileSync('mkfifo', [fifo]);
    let timer: NodeJS.Timeout | undefined;
    // Refusing takes milliseconds; opening a FIFO to read blocks until a writer comes, for ever here.
    const hung = new Promise<Error>((resolve) => (timer = setTimeout(() => resolve(new Error('not settled within 20000 ms')), 20_000)));
    const error = await Promise.race([rejection(fetchCheckedDocument(file('policy.fifo'), limits())), hung]).finally(() => clearTimeout(timer));
    expect(error).to.be.instanceOf(InvalidParameterValue);
    expect(error.message).to.equal(`driver_info.keylime_allowlist: ${fifo} is not a regular file`);
    const device: CheckedDocument = { source: { kind: 'file', path: '/dev/zero', field: 'keylime_allowlist' }, checksum: SHA };
    expect((await rejection(fetchCheckedDocument(device, limits()))).message).to.equal('driver_info.keylime_allowlist: /dev/zero is not a regular file');
  });

  it('names a missing file and a 404', async function () {
    const gone = await rejection(fetchCheckedDocument(file('nope.txt'), limits()));
    expect(gone.message).to.equal(`driver_info.keylime_allowlist: cannot read ${path.join(dir, 'nope.txt')}: ENOENT`);
    const notFound = await rejection(fetchCheckedDocument(url('/nope'), limits()));
    expect(notFound.message).to.equal(`driver_info.keylime_allowlist: ${base}/nope answered 404`);
  });

  it('counts a 5xx, a refused connection and a timeout as an unavailable service', async function () {
    const broken = await rejection(fetchCheckedDocument(url('/broken'), limits()));
    expect(broken).to.be.instanceOf(AttestationServiceUnavailable);
    expect(broken.message).to.equal(`attestation service unavailable: driver_info.keylime_allowlist (${base}/broken) answered 503`);
    const slow = await rejection(fetchCheckedDocument(url('/slow'), limits({ timeoutMs: 200 })));
    expect(slow).to.be.instanceOf(AttestationServiceUnavailable);
    expect(slow.message).to.equal(`attestation service unavailable: cannot fetch driver_info.keylime_allowlist (${base}/slow): no answer within 200 ms`);
    const closed = await closedPort();
    const refused: CheckedDocument = { source: { kind: 'url', url: `http://127.0.0.1:${closed}/a`, field: 'keylime_allowlist' }, checksum: SHA };
    const error = await rejection(fetchCheckedDocument(refused, limits()));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.equal(`attestation service unavailable: cannot fetch driver_info.keylime_allowlist (http://127.0.0.1:${closed}/a): ECONNREFUSED`);
  });

  it('counts a 429 or 408 as an unavailable service, not a driver_info error: retrying later cures them', async function () {
    for (const [route, status] of [['/busy', 429], ['/stalled', 408]] as const) {
      const error = await rejection(fetchCheckedDocument(url(route), limits()));
      expect(error, route).to.be.instanceOf(AttestationServiceUnavailable);
      expect(error.message).to.equal(`attestation service unavailable: driver_info.keylime_allowlist (${base}${route}) answered ${status}`);
    }
  });

  it("stops at once with the task's abort reason", async function () {
    const controller = new AbortController();
    const reason = new Error('task cancelled');
    setTimeout(() => controller.abort(reason), 50);
    const error = await rejection(fetchCheckedDocument(url('/slow'), limits({ signal: controller.signal })));
    expect(error).to.equal(reason);
  });
});
