import { open, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isErrno } from './pem-files.js';
import { PkiError } from './pki-error.js';

/**
 * A lock older than this is taken to be left by a process that died while issuing (issuing takes well
 * under a second: one RSA key and two file writes) and is removed.
 */
const STALE_MS = 20_000;
/** How long a process waits for others issuing the same certificate: longer than `STALE_MS`, so a dead holder's lock is removed first. */
const WAIT_MS = 45_000;
const POLL_MS = 50;

/**
 * Runs `work` while holding `<caDir>/<name>.lock`, a file created exclusively: processes sharing a CA
 * folder (several verifiers on one database, services on one data folder) issue `<name>` one at a
 * time, so none writes its key between another's key and certificate. `work` should read the files
 * again first: the process that held the lock before may already have issued what it needs.
 * @throws PkiError when the lock stays held (by a live process) for `WAIT_MS`.
 */
export async function withIssueLock<T>(caDir: string, name: string, work: () => Promise<T>): Promise<T> {
  const lockPath = path.join(caDir, `${name}.lock`);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw new PkiError(`cannot create ${lockPath}`, { cause: error });
    }
    if (await isStale(lockPath)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new PkiError(`${lockPath} has been held for ${WAIT_MS / 1000} s by another process issuing ${name}; remove it if no process is issuing`);
    }
    await sleep(POLL_MS);
  }
  try {
    return await work();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

async function isStale(lockPath: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(lockPath)).mtimeMs > STALE_MS;
  } catch (error) {
    // Released between the failed create and this look: try again at once.
    if (isErrno(error, 'ENOENT')) return false;
    throw new PkiError(`cannot read ${lockPath}`, { cause: error });
  }
}
