import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { makeFolderPrivate } from '../../lib/tpm-access/private-folder.js';

const MODULE = path.resolve(import.meta.dirname, '../../lib/tpm-access/private-folder.js');
/** `nobody` on Debian. */
const OTHER_USER = 65534;

describe('tpm-access: a swtpm folder made private', function () {
  let dir: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-private-folder-'));
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('narrows its own folder to 0700', async function () {
    await makeFolderPrivate(dir, 'the swtpm state folder');
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
  });

  it('makes a missing folder and the ones above it with 0700, and names the fault when its parent is not writable (run as nobody)', async function () {
    const nested = path.join(dir, 'a', 'b');
    await makeFolderPrivate(nested, 'the swtpm state folder', true);
    expect(statSync(nested).mode & 0o777).to.equal(0o700);
    expect(statSync(path.join(dir, 'a')).mode & 0o777).to.equal(0o700);
    if (process.getuid?.() !== 0) this.skip();
    const under = path.join(dir, 'c');
    const script = `import(${JSON.stringify(MODULE)}).then((m) => m.makeFolderPrivate(${JSON.stringify(under)}, 'the swtpm state folder', true)).then(() => console.log('made'), (e) => console.log(e.constructor.name + ': ' + e.message))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { uid: OTHER_USER, gid: OTHER_USER });
    expect(stdout.trim()).to.equal(`TpmAccessError: the swtpm state folder ${under} cannot be made private to this user (mode 0700): it, or the folder it is made in, belongs to another user; give it to the user the agent runs as, or choose another folder`);
  });

  it("names the folder and its owner's fault when it belongs to another user (run as nobody)", async function () {
    if (process.getuid?.() !== 0) this.skip();
    const script = `import(${JSON.stringify(MODULE)}).then((m) => m.makeFolderPrivate(${JSON.stringify(dir)}, 'the swtpm state folder')).then(() => console.log('made private'), (e) => console.log(e.constructor.name + ': ' + e.message))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { uid: OTHER_USER, gid: OTHER_USER });
    expect(stdout.trim()).to.equal(`TpmAccessError: the swtpm state folder ${dir} cannot be made private to this user (mode 0700): it, or the folder it is made in, belongs to another user; give it to the user the agent runs as, or choose another folder`);
  });
});
