import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { startSwtpm } from '../../lib/tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { parseTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { parseTpm2bPublic } from '../../lib/tpm/tpmt-public.js';
import { publicKeyFromTpmtPublic } from '../../lib/tpm/tpmt-public-key.js';
import { listHandles, startTestSwtpm, type SwtpmFixture } from './tpm-test-helpers.js';
import { processAlive } from '../helpers/process-alive.js';

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('swtpm manager (real swtpm)', () => {
  let fixture: SwtpmFixture;
  const extra: SwtpmFixture[] = [];

  before(async () => {
    fixture = await startTestSwtpm();
  });

  after(async () => {
    await Promise.all([fixture, ...extra].map((f) => f?.cleanup()));
  });

  it('manufactures an RSA EK whose NV certificate chains to the local CA through its intermediate', async () => {
    const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      const ek = await tpm.ensureEk();
      expect(ek.ekAlgorithm).to.equal('rsa');
      expect(ek.ekCertificate).to.not.equal(null);
      const cert = new X509Certificate(ek.ekCertificate as Uint8Array);
      const ca = await fixture.swtpm.localCaCertificates();
      const intermediate = new X509Certificate(ca.intermediatePem);
      const root = new X509Certificate(ca.rootPem);
      expect(cert.verify(intermediate.publicKey)).to.equal(true);
      expect(cert.verify(root.publicKey)).to.equal(false);
      expect(intermediate.verify(root.publicKey)).to.equal(true);
      expect(root.verify(root.publicKey)).to.equal(true);
      const ekKey = publicKeyFromTpmtPublic(parseTpm2bPublic(ek.ekPublic));
      expect(cert.publicKey.export({ type: 'spki', format: 'der' })).to.deep.equal(ekKey.export({ type: 'spki', format: 'der' }));
    } finally {
      await tpm.close();
    }
  });

  it('keeps the local CA in the directory we chose, not /var/lib/swtpm-localca', async () => {
    const ca = await fixture.swtpm.localCaCertificates();
    expect(fixture.swtpm.caDir.startsWith(fixture.dir)).to.equal(true);
    expect(ca.rootPath.startsWith(fixture.swtpm.caDir)).to.equal(true);
    expect(ca.intermediatePath.startsWith(fixture.swtpm.caDir)).to.equal(true);
    expect(ca.rootPem).to.match(/^-----BEGIN CERTIFICATE-----/);
  });

  it('serves on 127.0.0.1 with the control port right above the server port, as the swtpm TCTI expects', async () => {
    expect(fixture.swtpm.ctrlPort).to.equal(fixture.swtpm.port + 1);
    expect(fixture.swtpm.tcti).to.equal(`swtpm:host=127.0.0.1,port=${fixture.swtpm.port}`);
    expect(await portAnswers(fixture.swtpm.port)).to.equal(true);
    expect(await portAnswers(fixture.swtpm.ctrlPort)).to.equal(true);
  });

  it('restart is a power cycle: new process, PCRs reset, same EK and persistent handles', async () => {
    const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      const before = await tpm.ensureEk();
      await tpm.extendPcr(16, 'sha256', new Uint8Array(32).fill(7));
      const oldPid = fixture.swtpm.pid;
      await fixture.swtpm.restart();
      expect(fixture.swtpm.pid).to.be.a('number').and.not.equal(oldPid);
      expect(processAlive(oldPid as number)).to.equal(false);
      const pcrs = await tpm.readPcrs('sha256', [16]);
      expect(pcrs.get(16)).to.deep.equal(new Uint8Array(32));
      const afterRestart = await tpm.ensureEk();
      expect(afterRestart.ekPublic).to.deep.equal(before.ekPublic);
      expect(await listHandles(fixture.swtpm.tcti, 'handles-persistent')).to.include.members(['0x81010001', '0x81010016']);
    } finally {
      await tpm.close();
    }
  });

  it('restart({ orderly: false }) is a power loss: the next quote says the clock is not safe', async () => {
    const tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      await tpm.ensureAk('sha256');
      const safeAfter = async (): Promise<boolean> =>
        parseTpmsAttest((await tpm.quote({ nonce: new Uint8Array([1]), pcrs: [0], hashAlg: 'sha256' })).attest).clockInfo.safe;
      await fixture.swtpm.restart();
      expect(await safeAfter()).to.equal(true);
      await fixture.swtpm.restart({ orderly: false });
      expect(await safeAfter()).to.equal(false);
    } finally {
      await tpm.close();
    }
  });

  it('stop() kills swtpm and frees its ports; a second stop() is harmless', async () => {
    const other = await startTestSwtpm({ manufactureEk: false, caDir: fixture.swtpm.caDir });
    extra.push(other);
    const pid = other.swtpm.pid as number;
    expect(processAlive(pid)).to.equal(true);
    await other.swtpm.stop();
    expect(processAlive(pid)).to.equal(false);
    expect(other.swtpm.pid).to.equal(undefined);
    expect(await portAnswers(other.swtpm.port)).to.equal(false);
    await other.swtpm.stop();
  });

  it('without manufactureEk there is no EK certificate; the EK comes from the template and nothing stays loaded', async () => {
    const bare = await startTestSwtpm({ manufactureEk: false });
    extra.push(bare);
    const tpm = await openTpm2ToolsTpm({ tcti: bare.swtpm.tcti });
    try {
      const ek = await tpm.ensureEk();
      expect(ek.ekCertificate).to.equal(null);
      const pub = parseTpm2bPublic(ek.ekPublic);
      expect(pub.objectAttributes).to.equal(0x000300b2);
      expect(await listHandles(bare.swtpm.tcti, 'handles-transient')).to.deep.equal([]);
      expect(await listHandles(bare.swtpm.tcti, 'handles-persistent')).to.deep.equal([]);
    } finally {
      await tpm.close();
    }
  });

  it('two TPMs given one CA directory are certified by the same root', async () => {
    const second = await startTestSwtpm({ caDir: fixture.swtpm.caDir });
    extra.push(second);
    const [a, b] = await Promise.all([fixture.swtpm.localCaCertificates(), second.swtpm.localCaCertificates()]);
    expect(b.rootPem).to.equal(a.rootPem);
    const tpm = await openTpm2ToolsTpm({ tcti: second.swtpm.tcti });
    try {
      const cert = new X509Certificate((await tpm.ensureEk()).ekCertificate as Uint8Array);
      expect(cert.verify(new X509Certificate(a.intermediatePem).publicKey)).to.equal(true);
    } finally {
      await tpm.close();
    }
  });

  it('refuses a relative state directory', async () => {
    const error = await startSwtpm({ stateDir: 'relative/state' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property('code', 'ERR_TPM_ACCESS');
    expect((error as Error).message).to.equal('swtpm directory must be absolute and free of commas: relative/state');
  });
});
