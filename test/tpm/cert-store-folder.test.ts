import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { EkTrust } from '../../lib/registrar/ek-trust.js';
import { loadCertStore } from '../../lib/pki/cert-store-files.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/**
 * Issue 11 item 13: `--ek-ca-dir /var/lib/swtpm-localca` (as docs/registrar.md recommends) holds
 * swtpm's signing key next to its certificates. Files without a certificate are skipped; only a
 * folder with no certificate at all is refused.
 */
describe('EK CA folders with files that hold no certificate (issue 11 item 13)', function () {
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-ek-ca-'));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  function swtpmLocalCaLayout(): SoftwareEkCa {
    const ca = SoftwareEkCa.create({ commonName: 'swtpm-localca' });
    const { privateKey } = newRsaKeyPairSync();
    // The file names swtpm_localca uses in /var/lib/swtpm-localca.
    writeFileSync(path.join(dir, 'issuercert.pem'), ca.certificatePem);
    writeFileSync(path.join(dir, 'signkey.pem'), privateKey.export({ format: 'pem', type: 'pkcs1' }));
    writeFileSync(path.join(dir, 'swtpm-localca-rootca-privkey.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(path.join(dir, 'certserial'), '12\n');
    writeFileSync(path.join(dir, 'garbage.der'), Buffer.from('not a certificate'));
    return ca;
  }

  it('loads the certificates and lists the skipped files with their reason', function () {
    swtpmLocalCaLayout();
    const store = loadCertStore(dir);
    expect(store.entries.map((e) => e.name)).to.deep.equal(['issuercert.pem']);
    expect(store.skipped).to.deep.equal([
      { name: 'garbage.der', reason: 'not a DER or PEM certificate' },
      { name: 'signkey.pem', reason: 'PEM RSA PRIVATE KEY without a certificate' },
      { name: 'swtpm-localca-rootca-privkey.pem', reason: 'PEM PRIVATE KEY without a certificate' },
    ]);
  });

  it('lets the registrar start with such a folder and says in the log which files it skipped', function () {
    swtpmLocalCaLayout();
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const trust = EkTrust.load('require', [dir], log);
    expect(trust.size).to.be.greaterThan(1);
    const skipped = lines.map((line) => JSON.parse(line) as { file?: string; msg: string }).filter((l) => l.file !== undefined);
    expect(skipped.map((l) => l.file)).to.deep.equal(['garbage.der', 'signkey.pem', 'swtpm-localca-rootca-privkey.pem']);
    expect(skipped[0]?.msg).to.equal('EK CA folder: file skipped, it holds no certificate');
  });

  it('refuses a folder with no certificate at all, naming it', function () {
    writeFileSync(path.join(dir, 'signkey.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' }));
    expect(() => loadCertStore(dir)).to.throw(`certificate: ${dir}: no certificate found (skipped: signkey.pem)`);
    expect(() => EkTrust.load('require', [dir], pino({ level: 'silent' }))).to.throw(
      `invalid config: registrar.ekCaDirs: cannot load EK CA certificates from ${dir}`,
    );
  });

  it('still refuses a CERTIFICATE block that cannot be read', function () {
    writeFileSync(path.join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => loadCertStore(dir)).to.throw(/^certificate: broken\.pem: /);
  });
});
