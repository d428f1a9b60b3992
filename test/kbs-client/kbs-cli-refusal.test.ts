import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { EXIT_INVALID, EXIT_USAGE } from '../../lib/cli/exit-codes.js';
import { loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/**
 * `ironlime kbs get-resource` when the broker (or a proxy before it) answers the Request with a status
 * and no RFC 7807 body: the line printed was `kbs: refused: unknown: `, which says neither the status
 * nor whom it came from. It now carries both, and says whether the broker judged (4xx, exit 1) or gave
 * no judgement (a 5xx or a redirect, exit 2, as an unreachable broker).
 */
describe('kbs get-resource: a refusal without a problem body says its status and URL', function () {
  this.timeout(60_000);
  const temp = tempDirPerTest('ironlime-kbs-refusal-');
  let server: Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    server = undefined;
  });

  async function brokerAnswering(handler: (res: ServerResponse) => void): Promise<{ url: string; ca: string }> {
    const tls = await loadOrCreateServiceTls({ dataDir: temp.path, serviceName: 'broker' });
    const ca = path.join(temp.path, 'broker-ca.crt');
    writeFileSync(ca, tls.ca);
    server = createServer({ cert: tls.cert, key: tls.key }, (_req, res) => handler(res));
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca };
  }

  for (const [status, headers] of [
    [302, { location: 'https://elsewhere.example/kbs/v0/auth' }],
    [502, { 'content-type': 'text/html' }],
  ] as const) {
    it(`${status}: one line with the URL and the status`, async () => {
      const broker = await brokerAnswering((res) => {
        res.writeHead(status, headers);
        res.end();
      });
      const run = await getResource(broker);
      expect(run).to.deep.equal({ code: EXIT_USAGE, stdout: '', stderr: `ironlime: kbs: no answer from the broker: ${broker.url}/kbs/v0/auth: ${status} unknown: \n` });
    });
  }

  /**
   * Only a 4xx is the broker's judgement of the node (exit 1). A 5xx or a redirect exited 1 as well, so a
   * script could not tell a node refused from a broker that was down or a URL that pointed elsewhere.
   */
  for (const [status, type, code] of [
    [403, 'PolicyDeny', EXIT_INVALID],
    [401, 'AttestationError', EXIT_INVALID],
    [503, 'VerifierUnavailable', EXIT_USAGE],
    [500, 'InternalError', EXIT_USAGE],
  ] as const) {
    it(`${status} ${type}: exit ${code}`, async () => {
      const broker = await brokerAnswering((res) => {
        res.writeHead(status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: `https://github.com/confidential-containers/kbs/errors/${type}`, detail: 'said the broker' }));
      });
      const run = await getResource(broker);
      const what = code === EXIT_INVALID ? 'refused' : 'no answer from the broker';
      expect(run).to.deep.equal({ code, stdout: '', stderr: `ironlime: kbs: ${what}: ${broker.url}/kbs/v0/auth: ${status} ${type}: said the broker\n` });
    });
  }

  function getResource(broker: { url: string; ca: string }): Promise<CliRun> {
    return runCli(['kbs', 'get-resource', 'kbs:///node/disk-key/u12', '--url', broker.url, '--ca', broker.ca, '--agent-id', 'node-1', '--tcti', 'swtpm:port=1']);
  }
});
