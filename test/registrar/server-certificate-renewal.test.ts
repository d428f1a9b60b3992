import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:tls';
import { expect } from 'chai';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { startRegistrar, type RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';

/** The registrar's certificate lives 6 s and is renewed when less than 4 s are left. */
const VALIDITY_MS = 6000;
const MARGIN_MS = 4000;

/** The serial of the certificate a fresh TLS handshake with `url` shows, verified against `ca` (its dates included). */
function handshakeSerial(url: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('registrar: renews its TLS server certificate while it runs', function () {
  this.timeout(60_000);
  let dir: string;
  let opened: OpenedDatabase;
  let registrar: RunningRegistrar | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-server-renewal-'));
    opened = await openTestSchema();
  });
  afterEach(async () => {
    await registrar?.close();
    await opened.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves new handshakes with the renewed certificate, the one on disk, past the first one’s end', async () => {
    registrar = await startRegistrar(
      { dataDir: dir, port: 0, tlsPort: 0 },
      { database: opened.database, renewalForTests: { validityMs: VALIDITY_MS, renewMarginMs: MARGIN_MS } },
    );
    const certFile = path.join(caDirOf(dir), 'registrar-cert.crt');
    const first = new X509Certificate(readFileSync(certFile));
    expect(await handshakeSerial(registrar.tlsUrl, registrar.caCert)).to.equal(first.serialNumber);
    await sleep(Math.max(0, Date.parse(first.validTo) - Date.now()) + 1000);
    const onDiskBefore = new X509Certificate(readFileSync(certFile)).serialNumber;
    // Without renewal this handshake fails: the certificate served expired.
    const served = await handshakeSerial(registrar.tlsUrl, registrar.caCert);
    const onDiskAfter = new X509Certificate(readFileSync(certFile)).serialNumber;
    expect(served).to.not.equal(first.serialNumber);
    // A restart would serve the same one: the renewal wrote it where a start reads it (it may renew again meanwhile).
    expect([onDiskBefore, onDiskAfter]).to.include(served);
  });
});
