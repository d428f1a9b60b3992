import { truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrCreateAuditKey } from '../../lib/audit/audit-signing-key.js';
import { loadOrCreateTokenKey, TOKEN_KEY_FILE } from '../../lib/auth/token-signing-key.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** A key file `size` bytes long, sparse: nothing of it is on disk. */
function hugeKeyFile(file: string, size: number): void {
  writeFileSync(file, '', { mode: 0o600 });
  truncateSync(file, size);
}

describe('verifier key files: a huge one is refused, never read past the bound', function () {
  const temp = tempDirPerTest('ironlime-key-size-');

  it('the API token key (1 MiB, sparse; a larger one was read whole, however large): a PkiError naming the file and the bound', function () {
    hugeKeyFile(path.join(temp.path, TOKEN_KEY_FILE), 1024 * 1024);
    expect(() => loadOrCreateTokenKey(temp.path)).to.throw(PkiError, /api-token-key\.pem should hold a private key but holds more than the 65536 bytes it may/);
  });

  it('the audit key the verifier made is still read', function () {
    const made = loadOrCreateAuditKey(temp.path);
    expect(loadOrCreateAuditKey(temp.path).publicKey.export({ format: 'jwk' })).to.deep.equal(made.publicKey.export({ format: 'jwk' }));
  });
});
