import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import { startBroker, type RunningBroker } from '../../lib/broker/broker-server.js';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { openTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { handshakeSerial } from '../helpers/handshake-serial.js';

describe('broker: renews its TLS server certificate while it runs', function () {
  this.timeout(60_000);
  let dir: string;
  let opened: OpenedDatabase;
  let broker: RunningBroker | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-broker-renewal-'));
    opened = await openTestSchema();
  });
  afterEach(async () => {
    await broker?.close();
    broker = undefined;
    await opened.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  // Renewed 8 s after it is made, ending 12 s later: room for the first handshake and the renewal on a loaded host (2 s and 4 s
  // ended with "certificate has expired" in a loaded clean-clone run).
  it('serves new handshakes with the renewed certificate past the first one’s end', async () => {
    broker = await startBroker({ dataDir: dir, port: 0 }, { database: opened.database, renewalForTests: { validityMs: 20_000, renewMarginMs: 12_000 } });
    const first = new X509Certificate(readFileSync(path.join(caDirOf(dir), 'broker-cert.crt')));
    expect(await handshakeSerial(broker.url, broker.caCert)).to.equal(first.serialNumber);
    await sleep(Math.max(0, Date.parse(first.validTo) - Date.now()) + 1000);
    expect(await handshakeSerial(broker.url, broker.caCert)).to.not.equal(first.serialNumber);
  });

  it('warns of a client certificate the operator gave (verifierCert) that ends within 30 days, and leaves its file alone', async () => {
    const ca = createCertificateAuthority();
    const given = issueFromCa(ca, { commonName: 'broker-to-verifier', type: 'client', validityDays: 10 });
    const certFile = path.join(dir, 'verifier-client.crt');
    const keyFile = path.join(dir, 'verifier-client.key');
    writeFileSync(certFile, given.certPem);
    writeFileSync(keyFile, given.keyPem, { mode: 0o600 });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    broker = await startBroker(
      { dataDir: path.join(dir, 'data'), port: 0, verifierUrl: 'https://127.0.0.1:1', verifierCert: certFile, verifierKey: keyFile },
      { database: opened.database, logger },
    );
    const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40);
    expect(warnings.map((entry) => entry.msg)).to.satisfy((messages: string[]) =>
      messages.some((message) => message.startsWith(`broker.verifierCert ${certFile} expires on `) && message.includes('not renewed')),
    );
    expect(readFileSync(certFile, 'utf8')).to.equal(given.certPem);
  });
});
