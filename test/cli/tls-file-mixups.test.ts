import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { tlsFixture } from '../http/tls-fixture.js';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** Exit 2 and exactly one line on stderr that starts with `line`: no OpenSSL stack trace, nothing on stdout. */
function expectOneLine(run: CliRun, line: string): void {
  expect(run.code, run.stderr).to.equal(2);
  expect(run.stdout).to.equal('');
  expect(run.stderr.startsWith(`ironlime: ${line}`), run.stderr).to.equal(true);
  expect(run.stderr.trimEnd().split('\n'), run.stderr).to.have.length(1);
}

/**
 * The CA, certificate and key options of the commands other than the tenant, given the wrong file (a key
 * as the CA, an empty CA, a key of another certificate, a certificate as the key, a CA that did not issue
 * the server's certificate): one line naming the setting or option and the file, exit 2, before anything
 * is started or asked.
 */
describe('ironlime: CA, certificate and key files mixed up, beyond the tenant', function () {
  this.timeout(60_000);
  const dir = tempDirPerTest('ironlime-tls-mixups-');
  const file = (name: string, text: string, mode = 0o600): string => {
    const target = path.join(dir.path, name);
    writeFileSync(target, text, { mode });
    chmodSync(target, mode);
    return target;
  };

  it('broker --verifier-ca holding a key or nothing, --verifier-key of another certificate, --verifier-cert without its key', async function () {
    const tls = tlsFixture();
    const ca = file('ca.pem', tls.ca.certPem);
    const cert = file('cert.pem', tls.client.certPem);
    const key = file('key.pem', tls.client.keyPem);
    const otherKey = file('other-key.pem', tls.foreignClient.keyPem);
    const empty = file('empty.pem', '');
    const broker = (...args: string[]): Promise<CliRun> =>
      runCli(['broker', '--data-dir', path.join(dir.path, 'broker'), '--port', '1', '--log-level', 'silent', '--verifier', 'https://127.0.0.1:1', ...args]);
    expectOneLine(await broker('--verifier-ca', key, '--verifier-cert', cert, '--verifier-key', key), `invalid config: broker.verifierCa: ${key} holds no readable PEM certificate`);
    expectOneLine(await broker('--verifier-ca', empty), `invalid config: broker.verifierCa: ${empty} holds no readable PEM certificate`);
    expectOneLine(
      await broker('--verifier-ca', ca, '--verifier-cert', cert, '--verifier-key', otherKey),
      `invalid config: broker.verifierKey: ${otherKey} is not the private key of the client certificate`,
    );
    expectOneLine(await broker('--verifier-ca', ca, '--verifier-cert', cert), 'invalid config: broker.verifierKey: is needed with broker.verifierCert');
  });

  it('tenant --key given a certificate readable by others names --key and what it holds, not its permissions', async function () {
    const tls = tlsFixture();
    const ca = file('ca.pem', tls.ca.certPem);
    const cert = file('cert.pem', tls.client.certPem, 0o644);
    const run = await runCli(['tenant', 'list', '--verifier', 'https://127.0.0.1:1', '--ca', ca, '--cert', cert, '--key', cert]);
    expectOneLine(run, `invalid config: tenant.tls: --key ${cert} holds no readable PEM private key`);
  });

  it('kbs get-resource --ca holding a key or nothing, before the TPM is opened', async function () {
    const tls = tlsFixture();
    const key = file('key.pem', tls.client.keyPem);
    const empty = file('empty.pem', '');
    for (const [ca, option] of [
      [key, '--ca'],
      [empty, '--ca'],
    ] as const) {
      const run = await runCli(['kbs', 'get-resource', 'kbs:///node/disk-key/a', '--url', 'https://127.0.0.1:1', '--agent-id', 'a1', '--tcti', 'swtpm:port=1', option, ca]);
      expectOneLine(run, `${option}: ${ca} holds no readable PEM certificate`);
    }
  });

  describe('kbs get-resource against a broker whose certificate is not from --ca', function () {
    let server: Server;
    let url: string;

    before(async function () {
      const tls = tlsFixture();
      server = createServer({ cert: tls.server.certPem, key: tls.server.keyPem }, (_request, response) => response.end());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    after(async function () {
      await new Promise((resolve) => server.close(resolve));
    });

    it('names --ca and the CA to give, with --ca of another CA and with none (the system roots)', async function () {
      const otherCa = file('other-ca.pem', tlsFixture().otherCa.certPem);
      const get = (...args: string[]): Promise<CliRun> => runCli(['kbs', 'get-resource', 'kbs:///node/disk-key/a', '--url', url, '--agent-id', 'a1', '--tcti', 'swtpm:port=1', ...args]);
      expectOneLine(await get('--ca', otherCa), "--ca: the broker's certificate does not verify with the CA of --ca: give the broker's CA, its <data-dir>/ca/cacert.crt");
      expectOneLine(await get(), "--ca: the broker's certificate does not verify with the system roots (no --ca given): give the broker's CA");
    });
  });

  it('agent --registrar-ca holding a key, and verifier --revocation-webhook-ca holding nothing: the setting and the file', async function () {
    const key = file('key.pem', tlsFixture().client.keyPem);
    const empty = file('empty.pem', '');
    const agent = await runCli(['agent', '--data-dir', path.join(dir.path, 'agent'), '--registrar', 'https://127.0.0.1:1', '--registrar-ca', key, '--tpm', 'software']);
    expectOneLine(agent, `invalid config: agent.registrarCaFile: ${key} holds no PEM certificate`);
    const verifier = await runCli([
      'verifier',
      '--data-dir',
      path.join(dir.path, 'verifier'),
      '--port',
      '1',
      '--revocation-webhook',
      'https://127.0.0.1:1/revocation',
      '--revocation-webhook-ca',
      empty,
    ]);
    expectOneLine(verifier, `invalid config: verifier.revocationWebhookCa: ${empty} holds no PEM certificate`);
  });
});
