import { connect } from 'node:net';
import { expect } from 'chai';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { createRegistrarTestEnvironment, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';

/** Sends `GET <target>` byte for byte (no client-side URL checks) and returns the status line and body. */
function rawGet(baseUrl: string, target: string): Promise<{ status: number; body: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.end(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: registrar\r\nConnection: close\r\n\r\n`, 'latin1'));
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), body });
    });
  });
}

describe('registrar: malformed request paths answer in the Keylime envelope', function () {
  let env: RegistrarTestEnvironment;
  let registrar: RunningRegistrar;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    registrar = await startTestRegistrar(env, undefined, { ekCheck: 'off' });
  });

  after(async function () {
    await registrar?.close();
    env?.dispose();
  });

  const cases: ReadonlyArray<readonly [string, string, number, string]> = [
    ['bad percent-encoding', '/v2.6/agents/%zz', 400, 'path: is not valid percent-encoded UTF-8'],
    ['truncated UTF-8 escape', '/v2.6/agents/%E0%A4%A', 400, 'path: is not valid percent-encoded UTF-8'],
    ['bad percent-encoding outside any route', '/%zz', 400, 'path: is not valid percent-encoded UTF-8'],
    ['an overlong agent id', `/v2.6/agents/${'a'.repeat(300)}`, 400, 'path: a segment is longer than 256 characters'],
    ['a raw control character', '/v2.6/agents/a\u0001b', 400, 'request: is malformed'],
    ['a raw NUL', '/v2.6/agents/a\u0000b', 400, 'request: is malformed'],
    ['a request line over the header limit', `/${'a'.repeat(70_000)}`, 431, 'Request Header Fields Too Large'],
  ];
  for (const [what, target, code, status] of cases) {
    it(`answers ${code} to ${what}`, async function () {
      const reply = await rawGet(registrar.httpUrl, target);
      expect(reply.status).to.equal(code);
      expect(JSON.parse(reply.body)).to.deep.equal({ code, status, results: {} });
    });
  }
});
