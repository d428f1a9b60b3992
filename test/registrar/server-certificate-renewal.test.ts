import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'node:https';
import { expect } from 'chai';
import { issueCertificate } from '../../lib/pki/ca-directory.js';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { startRegistrar, type RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { handshakeSerial } from '../helpers/handshake-serial.js';

/**
 * Renewed 8 s after it is made, ending 12 s later: the first handshake has 8 s to see the first
 * certificate and the renewal 12 s to be served (2 s and 4 s failed on a loaded CI host).
 */
const VALIDITY_MS = 20_000;
const MARGIN_MS = 12_000;

/** The status of GET `path` on a fresh connection, presenting `client` if given. */
function statusOf(url: string, path: string, ca: string, client?: { certPem: string; keyPem: string }): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const asked = request(`${url}${path}`, { ca, agent: false, ...(client === undefined ? {} : { cert: client.certPem, key: client.keyPem }) }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    asked.on('error', reject);
    asked.end();
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

  it('still asks for client certificates after the swap: admin routes refuse none or a foreign one, accept one from its CA', async () => {
    registrar = await startRegistrar(
      { dataDir: dir, port: 0, tlsPort: 0 },
      { database: opened.database, renewalForTests: { validityMs: VALIDITY_MS, renewMarginMs: MARGIN_MS } },
    );
    const first = new X509Certificate(readFileSync(path.join(caDirOf(dir), 'registrar-cert.crt')));
    const admin = await issueCertificate({ caDir: caDirOf(dir), name: 'admin', type: 'client' });
    const foreign = issueFromCa(createCertificateAuthority({ commonName: 'another CA' }), { commonName: 'admin', type: 'client' });
    // The swap, not the first one's end (the test above waits for that): renewal starts MARGIN_MS before it.
    while ((await handshakeSerial(registrar.tlsUrl, registrar.caCert)) === first.serialNumber) await sleep(200);
    const statuses = await Promise.all([undefined, admin, foreign].map((client) => statusOf(registrar?.tlsUrl ?? '', '/v2.3/agents/', registrar?.caCert ?? '', client)));
    expect(statuses).to.deep.equal([403, 200, 403]);
  });
});
