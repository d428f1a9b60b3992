import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { manufactureSwtpm } from '../../lib/tpm-access/swtpm-setup.js';

/**
 * swtpm writes its state (`tpm2-00.permall`: the TPM's seeds, hence its EK private key) and
 * swtpm_localca its CA keys (`signkey.pem`, the root's private key) with mode 0640: the folders
 * holding them must keep group and others out, even under a parent folder others may enter.
 */
describe('swtpm manufacture: the state and the local CA in folders only the owner can enter', function () {
  this.timeout(60_000);
  let parent: string;

  before(async function () {
    parent = await mkdtemp(path.join(tmpdir(), 'ironlime-swtpm-modes-'));
    // What an operator's `mkdir /var/lib/ironlime` (umask 022) gives.
    await chmod(parent, 0o755);
  });
  after(async function () {
    await rm(parent, { recursive: true, force: true });
  });

  it('creates the state folder and the CA folder (and the folders above them it creates) with mode 0700', async function () {
    const stateDir = path.join(parent, 'swtpm', 'state');
    const caDir = path.join(parent, 'ca', 'localca');
    expect(await manufactureSwtpm({ stateDir, caDir, createEk: true, pcrBanks: ['sha256'], timeoutMs: 30_000 })).to.equal(true);
    for (const dir of [path.join(parent, 'swtpm'), stateDir, path.join(parent, 'ca'), caDir]) {
      expect(((await stat(dir)).mode & 0o777).toString(8), dir).to.equal('700');
    }
    // The secrets themselves are what swtpm makes them; the folders are what keeps others out.
    expect((await stat(path.join(stateDir, 'tpm2-00.permall'))).isFile()).to.equal(true);
    expect((await stat(path.join(caDir, 'signkey.pem'))).isFile()).to.equal(true);
  });

  it('narrows a state folder that exists but is empty (made by an operator, mode 0755) before swtpm writes into it', async function () {
    const stateDir = path.join(parent, 'made-before', 'state');
    await mkdir(stateDir, { recursive: true, mode: 0o755 });
    await chmod(stateDir, 0o755);
    expect(await manufactureSwtpm({ stateDir, caDir: path.join(parent, 'ca', 'localca'), createEk: false, pcrBanks: ['sha256'], timeoutMs: 30_000 })).to.equal(true);
    expect(((await stat(stateDir)).mode & 0o777).toString(8)).to.equal('700');
  });

  it('narrows a state folder made before (mode 0755) to 0700 when it finds the state there', async function () {
    const stateDir = path.join(parent, 'swtpm', 'state');
    await chmod(stateDir, 0o755);
    expect(await manufactureSwtpm({ stateDir, caDir: path.join(parent, 'ca', 'localca'), createEk: true, pcrBanks: ['sha256'], timeoutMs: 30_000 })).to.equal(false);
    expect(((await stat(stateDir)).mode & 0o777).toString(8)).to.equal('700');
  });
});
