import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CA_CERT_FILE, CA_KEY_FILE, initCa, issueCertificate, loadCa } from '../../lib/pki/ca-directory.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';
import { DAY_MS, datedCa, writeCaFolder } from './dated-ca.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

describe('pki: CA folder', () => {
  const temp = tempDirPerTest('ironlime-ca-');

  it('creates cacert.crt and ca-private.pem (0600) once, then only loads them', async () => {
    const caDir = path.join(temp.path, 'ca');
    const first = await initCa(caDir);
    expect(first.created).to.equal(true);
    expect((await stat(path.join(caDir, CA_KEY_FILE))).mode & 0o777).to.equal(0o600);
    expect((await stat(caDir)).mode & 0o777).to.equal(0o700);
    const ca = new X509Certificate(await readFile(path.join(caDir, CA_CERT_FILE)));
    expect(ca.ca).to.equal(true);
    expect(ca.subject).to.include('CN=ironlime CA');
    expect(ca.verify(ca.publicKey)).to.equal(true);

    const second = await initCa(caDir);
    expect(second.created).to.equal(false);
    expect(second.certPem).to.equal(first.certPem);
    expect(second.keyPem).to.equal(first.keyPem);
  });

  it('agrees on one CA when several inits race on one folder, and leaves no temporary files', async () => {
    const results = await Promise.all([initCa(temp.path), initCa(temp.path), initCa(temp.path)]);
    expect(results.filter((r) => r.created)).to.have.length(1);
    expect(new Set(results.map((r) => r.certPem)).size).to.equal(1);
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(temp.path)).sort()).to.deep.equal([CA_KEY_FILE, CA_CERT_FILE].sort());
  });

  it('refuses to replace a half-present CA', async () => {
    await initCa(temp.path);
    await unlink(path.join(temp.path, CA_KEY_FILE));
    const error = await rejectionOf(initCa(temp.path), PkiError);
    expect(error.code).to.equal('ERR_PKI');
    expect(error.message).to.match(/cacert\.crt exists without ca-private\.pem; refusing to replace the CA/);
  });

  it('refuses a key that does not belong to the CA certificate', async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'ironlime-ca-other-'));
    try {
      await initCa(temp.path);
      await initCa(other);
      await writeFile(path.join(temp.path, CA_KEY_FILE), await readFile(path.join(other, CA_KEY_FILE)));
      const error = await rejectionOf(loadCa(temp.path), PkiError);
      expect(error.message).to.match(/private key does not belong to the certificate/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('reports a missing CA with the command that creates one', async () => {
    const error = await rejectionOf(issueCertificate({ caDir: temp.path, name: 'x', type: 'client' }), PkiError);
    expect(error.message).to.equal(`no CA in ${temp.path} (create one with \`ironlime ca init --dir ${temp.path}\`)`);
  });

  it('issues a server certificate with serverAuth and the default and given SANs, verified by the CA', async () => {
    const ca = await initCa(temp.path);
    const issued = await issueCertificate({ caDir: temp.path, name: 'verifier', type: 'server', sans: ['verifier.example.org', '10.0.0.2', 'fd00::2'] });
    expect(issued.certPath).to.equal(path.join(temp.path, 'verifier-cert.crt'));
    expect(issued.keyPath).to.equal(path.join(temp.path, 'verifier-private.pem'));
    expect((await stat(issued.keyPath)).mode & 0o777).to.equal(0o600);
    const cert = new X509Certificate(await readFile(issued.certPath));
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.checkIssued(caCert)).to.equal(true);
    expect(cert.verify(caCert.publicKey)).to.equal(true);
    expect(cert.ca).to.equal(false);
    expect(cert.subject).to.include('CN=verifier');
    expect(cert.keyUsage).to.deep.equal([SERVER_AUTH]);
    expect(cert.subjectAltName).to.equal(
      'DNS:verifier.example.org, IP Address:10.0.0.2, IP Address:FD00:0:0:0:0:0:0:2, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(issued.keyPem))).to.equal(true);
  });

  it('issues a client certificate with clientAuth only and no SANs unless given', async () => {
    await initCa(temp.path);
    const issued = await issueCertificate({ caDir: temp.path, name: 'tenant', type: 'client' });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.keyUsage).to.deep.equal([CLIENT_AUTH]);
    expect(cert.subjectAltName).to.equal(undefined);
  });

  it('refuses SANs that are neither IP addresses nor DNS names, and unsafe file names', async () => {
    await initCa(temp.path);
    const bad = await rejectionOf(issueCertificate({ caDir: temp.path, name: 'x', type: 'server', sans: ['http://x/'] }), PkiError);
    expect(bad.message).to.equal('subject alternative name "http://x/" is neither an IP address nor a DNS name');
    const traversal = await rejectionOf(issueCertificate({ caDir: temp.path, name: '../evil', type: 'server' }), PkiError);
    expect(traversal.message).to.match(/^certificate name "\.\.\/evil" must match/);
  });

  it("refuses the name 'ca', whose key file is the CA's own key file, and leaves the CA as it was", async () => {
    const ca = await initCa(temp.path);
    for (const name of ['ca', 'CA']) {
      const error = await rejectionOf(issueCertificate({ caDir: temp.path, name, type: 'client' }), PkiError);
      expect(error.message).to.match(new RegExp(`^certificate name "${name}" would overwrite the CA's own ${CA_KEY_FILE}`));
    }
    const after = await loadCa(temp.path);
    expect(after.keyPem).to.equal(ca.keyPem);
    expect(after.certPem).to.equal(ca.certPem);
  });

  it('refuses an expired CA and one not yet valid, saying when and how to make a new one', async () => {
    const now = Date.now();
    await writeCaFolder(temp.path, datedCa(now - 400 * DAY_MS, now - DAY_MS));
    const expired = await rejectionOf(initCa(temp.path), PkiError);
    expect(expired.message).to.match(/^CA in .*: cacert\.crt expired on \d{4}-\d\d-\d\dT.*; create a new one with `ironlime ca init --dir /);
    await rejectionOf(issueCertificate({ caDir: temp.path, name: 'tenant', type: 'client' }), PkiError);
    await writeCaFolder(temp.path, datedCa(now + DAY_MS, now + 400 * DAY_MS));
    expect((await rejectionOf(loadCa(temp.path), PkiError)).message).to.match(/cacert\.crt not valid before /);
  });

  it('loads a CA dated up to 5 minutes ahead of this clock (made on another host by a tool that does not backdate), and issues from it', async () => {
    await writeCaFolder(temp.path, datedCa(Date.now() + 60_000, Date.now() + 400 * DAY_MS));
    await initCa(temp.path);
    await issueCertificate({ caDir: temp.path, name: 'tenant', type: 'client' });
    await writeCaFolder(temp.path, datedCa(Date.now() + 6 * 60_000, Date.now() + 400 * DAY_MS));
    expect((await rejectionOf(loadCa(temp.path), PkiError)).message).to.match(/cacert\.crt not valid before /);
  });

  it('cuts a certificate to the end of a CA with less than its validity left', async () => {
    const ca = datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS);
    await writeCaFolder(temp.path, ca);
    const issued = await issueCertificate({ caDir: temp.path, name: 'verifier', type: 'server' });
    expect(new X509Certificate(issued.certPem).validTo).to.equal(new X509Certificate(ca.certPem).validTo);
  });
});
