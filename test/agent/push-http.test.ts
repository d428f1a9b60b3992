import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { PushHttp } from '../../lib/agent/push/push-http.js';

const MIB = 1024 * 1024;

describe('push agent HTTP: reply bounds', function () {
  let server: Server;
  let http: PushHttp;

  before(async function () {
    // Answers like Keylime's 202: the request repeated in `data`, then `meta`.
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const sent = Buffer.concat(chunks).toString('utf8');
        const padding = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('pad') ?? '0');
        response.writeHead(202, { 'content-type': 'application/vnd.api+json' });
        response.end(`{"data":${sent === '' ? 'null' : sent},"pad":"${'x'.repeat(padding)}","meta":{"seconds_to_next_attestation":7}}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    http = new PushHttp(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, undefined);
  });

  after(async function () {
    await http.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads a 202 that repeats a 3 MiB evidence body (more than the 1 MiB a reply of its own may have)', async function () {
    const evidence = { entries: 'a'.repeat(3 * MIB) };
    const reply = await http.send('PATCH', '/v3.0/agents/a/attestations/0', evidence);
    expect(reply.status).to.equal(202);
    expect((reply.document as { meta: unknown }).meta).to.deep.equal({ seconds_to_next_attestation: 7 });
  });

  it('still refuses a reply more than 1 MiB larger than the request', async function () {
    const refused = await http.send('PATCH', `/v3.0/agents/a/attestations/0?pad=${MIB + 1024}`, { entries: 'a' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(refused)).to.contain('verifier reply larger than');
  });
});
