import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createCertificateAuthority, issueFromCa } from '../../lib/pki/certificate-authority.js';
import { createSelfSignedServerCertificate } from '../../lib/pki/self-signed-server.js';
import {
  caDirOf,
  loadOrCreateClientTls,
  loadOrCreateSelfSignedServerTls,
  loadOrCreateServiceTls,
} from '../../lib/pki/service-tls.js';

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
});
