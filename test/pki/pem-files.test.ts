import path from 'node:path';
import { expect } from 'chai';
import { createFileOnce, createFileOnceSync, PRIVATE_KEY_MODE } from '../../lib/pki/pem-files.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

describe('pem-files: createFileOnce', () => {
  const temp = tempDirPerTest('ironlime-pem-files-');

  // The CLI prints only an error's message: without the system's reason in it, "cannot create …" left
  // the operator to guess (a missing or read-only folder, a full disk, a file system without hard links).
  it('says why a file could not be made, in the message the CLI prints (sync and async)', async () => {
    const target = path.join(temp.path, 'missing-folder', 'api-token-key.pem');
    let syncError: unknown;
    try {
      createFileOnceSync(target, 'key', PRIVATE_KEY_MODE);
    } catch (error) {
      syncError = error;
    }
    const asyncError = await rejectionOf(createFileOnce(target, 'key', PRIVATE_KEY_MODE), PkiError);
    for (const error of [syncError, asyncError]) {
      expect(error).to.be.instanceOf(PkiError);
      expect((error as PkiError).message).to.include(target).and.to.include('ENOENT');
    }
  });
});
