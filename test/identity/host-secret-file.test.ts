import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { HOST_SECRET_FILE, loadOrCreateHostSecret } from '../../lib/identity/host-secret-file.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

const MODULE = new URL('../../lib/identity/host-secret-file.js', import.meta.url).href;

/**
 * The host secret is made once and never overwritten, so a file left half written would stop the agent
 * for good ("must hold 64 hex digits": only an admin re-registration gets it going again). It must
 * appear complete or not at all, as a crash or a full disk during the write would otherwise leave it.
 */
describe('host secret file: made complete or not at all', function () {
  this.timeout(30_000);
  const temp = tempDirPerTest('ironlime-host-secret-');

  it('a write that fails (no room: a file size limit of 0) leaves no host-secret, and the next start makes one', function () {
    const made = spawnSync('sh', ['-c', 'ulimit -f 0; exec "$0" --input-type=module -e "$1" "$2"', process.execPath, `import { loadOrCreateHostSecret } from '${MODULE}'; loadOrCreateHostSecret(process.argv[1]);`, temp.path], {
      encoding: 'utf8',
    });
    expect(made.status, made.stderr).to.equal(1);
    expect(made.stderr).to.match(/EFBIG/);
    expect(existsSync(path.join(temp.path, HOST_SECRET_FILE)), 'a host-secret was left by the failed write').to.equal(false);
    expect(readdirSync(temp.path), 'a draft was left behind').to.deep.equal([]);

    const next = loadOrCreateHostSecret(temp.path);
    expect(next.created).to.equal(true);
    expect(loadOrCreateHostSecret(temp.path)).to.deep.equal({ secret: next.secret, created: false });
  });

  it('a huge host-secret (600 MB, sparse) is refused by its size before it is read, naming the file', function () {
    const file = path.join(temp.path, HOST_SECRET_FILE);
    writeFileSync(file, '', { mode: 0o600 });
    // Read whole, it took a gigabyte of memory and then failed with an error that named no file.
    truncateSync(file, 600 * 1024 * 1024);
    expect(() => loadOrCreateHostSecret(temp.path)).to.throw(PkiError, /host-secret should hold a private key but holds more than the 128 bytes it may/);
  });
});
