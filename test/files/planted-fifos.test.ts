import { execFile, execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { hostBootTime } from '../../lib/agent/push/host-boot-time.js';
import { pgliteLockFile } from '../../lib/db/pglite-folder-lock.js';
import { withIssueLock } from '../../lib/pki/issue-lock.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** How long a read is given before it is taken as hung on the FIFO; generous for a loaded host. */
const HANG_MS = 20_000;

/** Runs `call` (an expression over `m`, the module at `modulePath`) in a child; what it printed, or 'still waiting' (killed) after HANG_MS. */
function inChild(modulePath: string, call: string): Promise<string> {
  const script = `const m = await import(process.argv[1]); try { ${call}; console.log('done'); } catch (error) { console.log(error.message); }`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script, modulePath], { timeout: HANG_MS }, (error, stdout) => {
      resolve(error?.killed === true ? 'still waiting' : stdout.trim());
    });
  });
}

/** Ends a read still waiting on the FIFO (end of file), so no thread of this process stays held. */
function release(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader is waiting, as it should be.
  }
}

/**
 * Files in a data folder read whole with readFileSync / readFile: a FIFO planted in their place held
 * the start for ever (the main thread for the sync ones). Read with the bounded regular-file reader:
 * refused at once, in a line that names the file.
 */
describe('data folder files: a FIFO in their place is refused, not waited on', function () {
  this.timeout(3 * HANG_MS);
  const temp = tempDirPerTest('ironlime-planted-fifo-');
  const dist = path.resolve(import.meta.dirname, '../../lib');

  function fifoAt(file: string, agoMs = 0): string {
    execFileSync('mkfifo', [file]);
    if (agoMs > 0) {
      const then = new Date(Date.now() - agoMs);
      utimesSync(file, then, then);
    }
    return file;
  }

  it('the PGlite lock file: opening the folder fails with the reason', async () => {
    const folder = path.join(temp.path, 'pglite');
    mkdirSync(folder);
    const lock = fifoAt(pgliteLockFile(folder));
    const outcome = await inChild(path.join(dist, 'db/pglite-folder-lock.js'), `m.lockPgliteFolder(${JSON.stringify(folder)})`);
    release(lock);
    expect(outcome).to.equal(`database unavailable: cannot read the lock file ${lock}: ${lock} is not a regular file`);
  });

  it("the verifier's unstored liveness failures: the start is refused with the reason", async () => {
    const list = fifoAt(path.join(temp.path, 'unstored-liveness-failures.json'));
    const own = path.join(temp.path, 'unstored-liveness-failures.0a0b.json');
    const outcome = await inChild(path.join(dist, 'verifier/liveness/unstored-failures-file.js'), `m.claimUnstoredFailures(${JSON.stringify(list)}, ${JSON.stringify(own)})`);
    release(list);
    expect(outcome).to.match(/^the unstored liveness failures: .*unstored-liveness-failures\.[0-9a-f]+\.json is not a regular file$/);
  });

  it('an issue lock left stale: refused with the reason', async () => {
    const lock = fifoAt(path.join(temp.path, 'verifier.lock'), 60_000);
    const outcome = await Promise.race([rejectionOf(withIssueLock(temp.path, 'verifier', async () => 'entered'), PkiError), sleep(HANG_MS, 'still waiting')]);
    release(lock);
    expect(outcome).to.be.instanceOf(PkiError);
    expect((outcome as PkiError).message).to.equal(`cannot remove the stale lock ${lock}: ${lock} is not a regular file`);
  });

  it("the push agent's kernel files: the boot time falls back to the process start", async () => {
    const procStat = fifoAt(path.join(temp.path, 'stat'));
    const bootIdFile = fifoAt(path.join(temp.path, 'boot_id'));
    const outcome = await Promise.race([hostBootTime(temp.path, { procStat, bootIdFile }), sleep(HANG_MS, 'still waiting')]);
    release(procStat);
    release(bootIdFile);
    expect(outcome).to.be.instanceOf(Date);
    expect(Math.abs((outcome as Date).getTime() - (Date.now() - process.uptime() * 1000))).to.be.below(5000);
  });
});
