import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createPlainServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import type { DriverInfo } from '../../interfaces/node.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { keylimeTestNode as node, rejection } from './driver-test-node.js';

const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
// A long status timeout: a driver that retried TLS failures would run into mocha's timeout.
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 120, statusPollIntervalSeconds: 1 } });

/** An HTTPS verifier with the fixture CA's server certificate that counts TCP connections. */
class CountingVerifier {
  connections = 0;
  readonly server: Server;
  url = '';

  constructor(requireClientCertificate: boolean) {
    const tls = tlsFixture();
    this.server = createServer(
      { cert: tls.server.certPem, key: tls.server.keyPem, ca: tls.ca.certPem, requestCert: requireClientCertificate, rejectUnauthorized: requireClientCertificate },
      (request, response) => {
        request.resume();
        const body = request.url === '/version' ? { current_version: '2.6', supported_versions: ['2.6'] } : { operational_state: 3, attestation_count: 1, last_successful_attestation: Math.floor(Date.now() / 1000), meta_data: JSON.stringify({ node: node({}).uuid }) };
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 200, status: 'Success', results: body }));
      },
    );
    this.server.on('connection', () => {
      this.connections += 1;
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('keylime driver: a TLS verification failure is a configuration error, not retried (issue 11 item 11)', function () {
  let dir: string;
  // 0600: the client key among them is refused otherwise, like every private key file.
  const file = (name: string, text: string): string => {
    writeFileSync(path.join(dir, name), text, { mode: 0o600 });
    return path.join(dir, name);
  };

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-driver-tls-'));
    file('allowlist.txt', ALLOWLIST);
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  function driverInfo(verifierUrl: string, ca: string, client: { certPem: string; keyPem: string }): DriverInfo {
    return {
      keylime_allowlist: path.join(dir, 'allowlist.txt'),
      keylime_allowlist_checksum: createHash('sha256').update(ALLOWLIST).digest('hex'),
      keylime_agent_uuid: AGENT,
      keylime_verifier_url: verifierUrl,
      keylime_registrar_url: 'https://registrar.invalid:8891',
      keylime_tls_ca: file('ca.crt', ca),
      keylime_tls_cert: file('client.crt', client.certPem),
      keylime_tls_key: file('client.key', client.keyPem),
    };
  }

  it('names keylime_tls_ca when the verifier certificate does not chain to it, after one connection', async function () {
    const tls = tlsFixture();
    const verifier = new CountingVerifier(false);
    await verifier.start();
    try {
      const task = createTask(node(driverInfo(verifier.url, tls.otherCa.certPem, tls.client)), CONFIG);
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).field).to.equal('driver_info.keylime_tls_ca');
      expect(error.message).to.match(/^driver_info\.keylime_tls_ca: the service certificate does not verify with this CA: .*\/version: TLS handshake failed: .*\(a configuration error: not retried\)$/);
      expect(verifier.connections).to.equal(1);
      const unregister = await rejection(new KeylimeAttestation().unregisterNode(task));
      expect((unregister as InvalidParameterValue).field).to.equal('driver_info.keylime_tls_ca');
    } finally {
      await verifier.stop();
    }
  });

  it('names keylime_verifier_url when it is a plain HTTP port behind an https URL', async function () {
    const tls = tlsFixture();
    const plain = createPlainServer((request, response) => {
      request.resume();
      response.end('{}');
    });
    let connections = 0;
    plain.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      const task = createTask(node(driverInfo(url, tls.ca.certPem, tls.client)), CONFIG);
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(task));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).field).to.equal('driver_info.keylime_verifier_url');
      expect(error.message).to.contain('no TLS protocol in common with the service (is it an https port?)');
      expect(connections).to.equal(1);
    } finally {
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('names keylime.verifierUrl, not a driver_info field the node does not have, when the config URL is the plain port', async function () {
    const tls = tlsFixture();
    const plain = createPlainServer((request, response) => {
      request.resume();
      response.end('{}');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      const config = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { verifierUrl: url, statusTimeoutSeconds: 120, statusPollIntervalSeconds: 1 } });
      const info: Record<string, unknown> = { ...driverInfo(url, tls.ca.certPem, tls.client) };
      delete info['keylime_verifier_url'];
      const error = await rejection(new KeylimeAttestation().validateSecurityStatus(createTask(node(info as DriverInfo), config)));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).field).to.equal('keylime.verifierUrl');
      expect(error.message).to.contain('no TLS protocol in common with the service (is it an https port?)');
    } finally {
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });

  it('still passes with the right CA and client certificate, and still retries an unreachable verifier', async function () {
    const tls = tlsFixture();
    const verifier = new CountingVerifier(true);
    await verifier.start();
    try {
      await new KeylimeAttestation().validateSecurityStatus(createTask(node(driverInfo(verifier.url, tls.ca.certPem, tls.client)), CONFIG));
    } finally {
      await verifier.stop();
    }
    const closed = verifier.url;
    const quick = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
    const error = await rejection(new KeylimeAttestation().validateSecurityStatus(createTask(node(driverInfo(closed, tls.ca.certPem, tls.client)), quick)));
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect(error.message).to.contain('no verdict from the verifier within 1 s');
  });
});
