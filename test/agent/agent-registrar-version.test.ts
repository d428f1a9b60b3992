import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { initAgent } from '../../lib/agent/agent-init.js';
import { startAgent, type RunningAgent } from '../../lib/agent/agent-server.js';
import { startRegistrar, type RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { openTestSchema } from '../helpers/databases.js';

/** `GET /version` of a Keylime 7.14 registrar, whose router serves no 2.6 URL. */
const KEYLIME_7_14_VERSION = { current_version: '2.5', supported_versions: ['1.0', '2.0', '2.1', '2.2', '2.3', '2.4', '2.5', '3.0'] };

/**
 * A registrar routed as Keylime 7.14's is (its `/version`, a 404 for any `/v2.6/…`), in front of
 * ironlime's: what it forwards is served by the real registrar. `seen` lists each request line.
 */
async function keylime714Front(target: string): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((incoming, outgoing) => {
    const url = incoming.url ?? '/';
    seen.push(`${incoming.method ?? ''} ${url}`);
    if (url === '/version') {
      outgoing.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 200, status: 'Success', results: KEYLIME_7_14_VERSION }));
      return;
    }
    if (url.startsWith('/v2.6/')) {
      outgoing.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 404, status: 'Not Found', results: {} }));
      return;
    }
    const forwarded = request(`${target}${url}`, { method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/**
 * The agent's registrar API version. It was fixed at 2.6 by default, a version Keylime's registrars up
 * to 7.14 do not route: the agent could not register with them. Unset, it now negotiates; a version set
 * in the configuration is still used as it is.
 */
describe('agent registration: the registrar API version', function () {
  this.timeout(60_000);
  let root: string;
  let schema: Awaited<ReturnType<typeof openTestSchema>>;
  let registrar: RunningRegistrar;
  let front: Awaited<ReturnType<typeof keylime714Front>>;
  const agents: RunningAgent[] = [];

  before(async function () {
    root = await mkdtemp(path.join(tmpdir(), 'ironlime-agent-registrar-version-'));
    schema = await openTestSchema();
    // Each software TPM's EK CA is in its data folder: made first, so the registrar trusts both.
    const ekCaDirs = [];
    for (const node of ['negotiating', 'fixed']) ekCaDirs.push((await initAgent({ dataDir: path.join(root, node), tpm: 'software' })).ekCaDir!);
    registrar = await startRegistrar({ dataDir: path.join(root, 'registrar'), port: 0, tlsPort: 0, ekCaDirs }, { database: schema.database });
    front = await keylime714Front(registrar.httpUrl);
  });
  after(async function () {
    for (const agent of agents) await agent.close();
    await new Promise((resolve) => front?.server.close(resolve));
    await registrar?.close();
    await schema?.dispose();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(function () {
    front.seen.length = 0;
  });

  it('unset, it registers with a registrar whose highest version is 2.5, at /v2.5', async function () {
    const agent = await startAgent({ dataDir: path.join(root, 'negotiating'), registrarUrl: front.url, port: 0, tpm: 'software' });
    agents.push(agent);
    expect(front.seen[0]).to.equal('GET /version');
    expect(front.seen.slice(1)).to.deep.equal([`POST /v2.5/agents/${agent.uuid}`, `PUT /v2.5/agents/${agent.uuid}`]);
  });

  it('set, it is used as it is and /version is not asked', async function () {
    const agent = await startAgent({ dataDir: path.join(root, 'fixed'), registrarUrl: front.url, port: 0, tpm: 'software', registrarApiVersion: '2.4' });
    agents.push(agent);
    expect(front.seen).to.deep.equal([`POST /v2.4/agents/${agent.uuid}`, `PUT /v2.4/agents/${agent.uuid}`]);
  });
});
