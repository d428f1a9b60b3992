import { execFileSync } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { CA_KEY_FILE, initCa, loadCa } from '../../lib/pki/ca-directory.js';
import { caDirOf, loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { readPrivateIfExists, readPrivateSync } from '../../lib/pki/private-file.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

describe('pki: private key files group or others may use are refused', () => {
  const temp = tempDirPerTest('ironlime-keyperm-');

  it('refuses a CA key readable by others, naming the file, its mode and the fix', async () => {
    await initCa(temp.path);
    const keyPath = path.join(temp.path, CA_KEY_FILE);
    await chmod(keyPath, 0o644);
    const error = await rejectionOf(loadCa(temp.path), PkiError);
    expect(error.message).to.equal(
      `${keyPath} holds a private key but its permissions 0644 let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`,
    );
    await chmod(keyPath, 0o600);
    expect((await loadCa(temp.path)).keyPath).to.equal(keyPath);
  });

  it('refuses a service key its group may read instead of serving with it', async () => {
    await loadOrCreateServiceTls({ dataDir: temp.path, serviceName: 'registrar' });
    const keyPath = path.join(caDirOf(temp.path), 'registrar-private.pem');
    await chmod(keyPath, 0o640);
    const error = await rejectionOf(loadOrCreateServiceTls({ dataDir: temp.path, serviceName: 'registrar' }), PkiError);
    expect(error.message).to.include(`${keyPath} holds a private key but its permissions 0640`);
  });

  it('refuses a FIFO at once instead of waiting for a writer', async function () {
    this.timeout(5_000);
    const fifo = path.join(temp.path, 'key.fifo');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    const error = await rejectionOf(readPrivateIfExists(fifo), PkiError);
    expect(error.message).to.equal(`${fifo} should hold a private key but is not a regular file`);
    expect(() => readPrivateSync(fifo)).to.throw(PkiError, 'is not a regular file');
  });
});
