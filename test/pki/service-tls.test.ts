import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { issueCertificate } from '../../lib/pki/ca-directory.js';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import {
  caDirOf,
  loadOrCreateClientTls,
  loadOrCreateSelfSignedServerTls,
  loadOrCreateServiceTls,
  renewalDue,
} from '../../lib/pki/service-tls.js';
import { rejectionOf } from '../helpers/rejection.js';
import { DAY_MS, datedCa, keylimeStyleLeaf, uncappedLeaf, writeCaFolder } from './dated-ca.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

describe('pki: zero-configuration service TLS', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-tls-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates <dataDir>/ca and a server certificate, then reuses both', async () => {
    const first = await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar' });
    expect((await stat(path.join(caDirOf(dataDir), 'cacert.crt'))).isFile()).to.equal(true);
    const cert = new X509Certificate(first.cert);
    expect(cert.verify(new X509Certificate(first.ca).publicKey)).to.equal(true);
    expect(cert.subjectAltName).to.include('IP Address:127.0.0.1');
    const again = await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar' });
    expect(again).to.deep.equal(first);
  });

  it('reissues when a new SAN is wanted, and shares the CA between services', async () => {
    const registrar = await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar' });
    const wider = await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar', sans: ['fd00::0:5', 'reg.example'] });
    expect(wider.cert).to.not.equal(registrar.cert);
    expect(new X509Certificate(wider.cert).subjectAltName).to.include('IP Address:FD00:0:0:0:0:0:0:5');
    // The same names spelt differently need no new certificate.
    const same = await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar', sans: ['fd00::5', 'REG.example'] });
    expect(same.cert).to.equal(wider.cert);
    const verifier = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier' });
    expect(verifier.ca).to.equal(registrar.ca);
  });

  it('replaces a certificate on disk that another CA issued', async () => {
    const mine = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier' });
    const foreign = issueFromCa(createCertificateAuthority(), { commonName: 'verifier', type: 'server' });
    await writeFile(path.join(caDirOf(dataDir), 'verifier-cert.crt'), foreign.certPem);
    await writeFile(path.join(caDirOf(dataDir), 'verifier-private.pem'), foreign.keyPem);
    const replaced = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier' });
    expect(replaced.cert).to.not.equal(foreign.certPem);
    expect(new X509Certificate(replaced.cert).verify(new X509Certificate(mine.ca).publicKey)).to.equal(true);
  });

  it('creates client certificates with clientAuth', async () => {
    const tenant = await loadOrCreateClientTls({ dataDir, serviceName: 'tenant' });
    expect(new X509Certificate(tenant.cert).keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
  });

  it('persists the agent self-signed certificate across restarts', async () => {
    const dir = path.join(dataDir, 'agent');
    const uuid = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000';
    const first = await loadOrCreateSelfSignedServerTls({ dir, name: 'server', commonName: uuid, sans: ['10.0.0.9'] });
    const again = await loadOrCreateSelfSignedServerTls({ dir, name: 'server', commonName: uuid, sans: ['10.0.0.9'] });
    expect(again).to.deep.equal(first);
    expect((await stat(path.join(dir, 'server-private.pem'))).mode & 0o777).to.equal(0o600);
  });

  it('makes a self-signed, non-CA agent server certificate named by its UUID', () => {
    const pair = createSelfSignedServerCertificate({ commonName: 'agent-1', sans: ['agent1.example'] });
    const cert = new X509Certificate(pair.certPem);
    expect(cert.subject).to.include('CN=agent-1');
    expect(cert.issuer).to.equal(cert.subject);
    expect(cert.verify(cert.publicKey)).to.equal(true);
    expect(cert.ca).to.equal(false);
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
    expect(cert.subjectAltName).to.equal('DNS:agent1.example, DNS:localhost, IP Address:127.0.0.1');
  });

  it('refuses to start a service on an expired CA instead of issuing from it', async () => {
    await writeCaFolder(caDirOf(dataDir), datedCa(Date.now() - 400 * DAY_MS, Date.now() - DAY_MS));
    const error = await rejectionOf(loadOrCreateServiceTls({ dataDir, serviceName: 'registrar' }), PkiError);
    expect(error.message).to.include('cacert.crt expired on');
  });

  it('issues no certificate outliving a CA that ends in 10 days, and warns of the CA', async () => {
    const ca = datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS);
    await writeCaFolder(caDirOf(dataDir), ca);
    const warnings: string[] = [];
    const tls = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: (message) => warnings.push(message) });
    expect(Date.parse(new X509Certificate(tls.cert).validTo)).to.equal(Date.parse(new X509Certificate(ca.certPem).validTo));
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/^CA .*cacert\.crt expires on .* \((9|10) days left\): every certificate it issued stops working then/);
  });

  it('renews a certificate with less than 30 days left, but keeps one that ends with its CA (a new one could not end later)', async () => {
    const ca = datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS);
    await writeCaFolder(caDirOf(dataDir), ca);
    const short = issueFromCa(ca, { commonName: 'verifier', type: 'server', validityDays: 5 });
    await writeFile(path.join(caDirOf(dataDir), 'verifier-cert.crt'), short.certPem);
    await writeFile(path.join(caDirOf(dataDir), 'verifier-private.pem'), short.keyPem, { mode: 0o600 });
    expect(renewalDue({ ca: ca.certPem, cert: short.certPem, key: short.keyPem }, Date.now())).to.equal(true);
    const renewed = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: () => undefined });
    expect(renewed.cert).to.not.equal(short.certPem);
    expect(Date.parse(new X509Certificate(renewed.cert).validTo)).to.equal(Date.parse(new X509Certificate(ca.certPem).validTo));
    expect(renewalDue(renewed, Date.now())).to.equal(false);
    expect((await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: () => undefined })).cert).to.equal(renewed.cert);
  });

  it('takes over an issue lock left by a process that died while issuing, and leaves none', async () => {
    await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar', warn: () => undefined });
    const lock = path.join(caDirOf(dataDir), 'verifier.lock');
    await writeFile(lock, '999999');
    await utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const tls = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: () => undefined });
    expect(new X509Certificate(tls.cert).subject).to.include('CN=verifier');
    expect(await readdir(caDirOf(dataDir))).to.not.include('verifier.lock');
  });

  it('says nothing of a CA with years left', async () => {
    const warnings: string[] = [];
    await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: (message) => warnings.push(message) });
    expect(warnings).to.deep.equal([]);
  });

  it('reissues a certificate on disk that outlives its CA', async () => {
    const ca = datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS);
    await writeCaFolder(caDirOf(dataDir), ca);
    const outliving = uncappedLeaf(ca, 365);
    await writeFile(path.join(caDirOf(dataDir), 'verifier-cert.crt'), outliving.certPem);
    await writeFile(path.join(caDirOf(dataDir), 'verifier-private.pem'), outliving.keyPem, { mode: 0o600 });
    const tls = await loadOrCreateServiceTls({ dataDir, serviceName: 'verifier', warn: () => undefined });
    expect(tls.cert).to.not.equal(outliving.certPem);
    expect(Date.parse(new X509Certificate(tls.cert).validTo)).to.be.at.most(Date.parse(new X509Certificate(ca.certPem).validTo));
  });

  it("reuses a client certificate without extendedKeyUsage (Keylime's CA tool issues none) or with anyExtendedKeyUsage, as TLS peers accept it", async () => {
    const ca = datedCa(Date.now() - DAY_MS, Date.now() + 3000 * DAY_MS);
    const caDir = caDirOf(dataDir);
    await writeCaFolder(caDir, ca);
    for (const [name, leaf] of [
      ['tenant', keylimeStyleLeaf(ca, 'tenant')],
      ['verifier-client', keylimeStyleLeaf(ca, 'verifier-client', { '2.5.29.37.0': true })],
    ] as const) {
      await writeFile(path.join(caDir, `${name}-cert.crt`), leaf.certPem);
      await writeFile(path.join(caDir, `${name}-private.pem`), leaf.keyPem, { mode: 0o600 });
      expect((await loadOrCreateClientTls({ dataDir, serviceName: name })).cert, name).to.equal(leaf.certPem);
    }
  });

  it('does not reuse a server certificate as a client certificate, nor the reverse', async () => {
    const caDir = caDirOf(dataDir);
    await loadOrCreateServiceTls({ dataDir, serviceName: 'registrar' });
    await issueCertificate({ caDir, name: 'verifier-client', type: 'server' });
    expect(new X509Certificate((await loadOrCreateClientTls({ dataDir, serviceName: 'verifier-client' })).cert).keyUsage).to.deep.equal([CLIENT_AUTH]);
    await issueCertificate({ caDir, name: 'broker', type: 'client' });
    expect(new X509Certificate((await loadOrCreateServiceTls({ dataDir, serviceName: 'broker' })).cert).keyUsage).to.deep.equal([SERVER_AUTH]);
  });
});
