import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { openAgentTpm, TPM_FILES } from '../../lib/agent/agent-tpm.js';

/**
 * A data dir made before the swtpm folders were 0700: its own local CA folder (the CA's private keys,
 * mode 0640) is narrowed at the next start, as the state folder is.
 */
describe('agent swtpm: the data dir\'s own local CA folder made before (0755) is narrowed at start', function () {
  this.timeout(60_000);
  let dataDir: string;

  before(async function () {
    dataDir = await mkdtemp(path.join(tmpdir(), 'ironlime-agent-tpm-modes-'));
  });
  after(async function () {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('leaves <dataDir>/swtpm/localca with mode 0700', async function () {
    await (await openAgentTpm('swtpm', dataDir)).close();
    const caDir = path.join(dataDir, TPM_FILES.swtpmCa);
    await chmod(caDir, 0o755);
    await (await openAgentTpm('swtpm', dataDir)).close();
    expect(((await stat(caDir)).mode & 0o777).toString(8)).to.equal('700');
    expect(((await stat(path.join(dataDir, TPM_FILES.swtpmState))).mode & 0o777).toString(8)).to.equal('700');
  });
});
