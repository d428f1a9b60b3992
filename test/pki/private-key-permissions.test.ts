import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CA_KEY_FILE, initCa, loadCa } from '../../lib/pki/ca-directory.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { caDirOf, loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';

async function rejection(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PkiError);
    return error as PkiError;
  }
  throw new Error('expected a PkiError');
}

describe('pki: private key files group or others may use are refused', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-keyperm-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a CA key readable by others, naming the file, its mode and the fix', async () => {
    await initCa(dir);
    const keyPath = path.join(dir, CA_KEY_FILE);
    await chmod(keyPath, 0o644);
    const error = await rejection(loadCa(dir));
    expect(error.message).to.equal(
      `${keyPath} holds a private key but its permissions 0644 let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`,
    );
    await chmod(keyPath, 0o600);
    expect((await loadCa(dir)).keyPath).to.equal(keyPath);
  });

  it('refuses a service key its group may read instead of serving with it', async () => {
    await loadOrCreateServiceTls({ dataDir: dir, serviceName: 'registrar' });
    const keyPath = path.join(caDirOf(dir), 'registrar-private.pem');
    await chmod(keyPath, 0o640);
    const error = await rejection(loadOrCreateServiceTls({ dataDir: dir, serviceName: 'registrar' }));
    expect(error.message).to.include(`${keyPath} holds a private key but its permissions 0640`);
  });
});
