import { randomUUID } from 'node:crypto';
import { open, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileReadError, readRegularFile } from '../files/regular-file.js';
import { isErrno } from './pem-files.js';
import { PkiError } from './pki-error.js';

/**
 * A lock not touched for this long is taken to be left by a process that died while issuing and is
 * removed. Its holder touches it every quarter of this, so a slow one (a loaded machine) keeps it.
 */
const STALE_MS = 20_000;
/** How long a process waits for others issuing the same certificate: longer than `STALE_MS`, so a dead holder's lock is removed first. */
const WAIT_MS = 45_000;
const POLL_MS = 50;
/** Longest lock read: a holder writes its pid and a UUID. */
const MAX_LOCK_BYTES = 4096;

/**
 * Runs `work` while holding `<caDir>/<name>.lock`, a file created exclusively: processes sharing a CA
 * folder (several verifiers on one database, services on one data folder) issue `<name>` one at a
 * time, so none writes its key between another's key and certificate. `work` should read the files
 * again first: the process that held the lock before may already have issued what it needs. A holder
 * paused past `STALE_MS` loses the lock and may then write alongside the next one: the pair on disk
 * may then be mismatched, which every reader refuses and reissues (each process uses the pair it made).
 * `signal` ends the wait for another holder (a service closing); once held, `work` runs to its end.
 * @throws PkiError when the lock stays held (by a live process) for `WAIT_MS`, or a stale one cannot be removed;
 *   the signal's reason when it aborts the wait.
 */
export async function withIssueLock<T>(caDir: string, name: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const lockPath = path.join(caDir, `${name}.lock`);
  // Names this holder: it removes the lock only while the lock is still its own.
  const token = `${process.pid} ${randomUUID()}`;
  await acquire(lockPath, token, name, signal);
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, STALE_MS / 4);
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    await removeIfHeldBy(lockPath, token).catch(() => undefined);
  }
}

async function acquire(lockPath: string, token: string, name: string, signal: AbortSignal | undefined): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    signal?.throwIfAborted();
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(token);
      await handle.close();
      return;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw new PkiError(`cannot create ${lockPath}`, { cause: error });
    }
    const stale = await staleLockAt(lockPath);
    if (stale !== undefined) {
      await removeIfHeldBy(lockPath, stale.held);
      continue;
    }
    if (Date.now() > deadline) {
      throw new PkiError(`${lockPath} has been held for ${WAIT_MS / 1000} s by another process issuing ${name}; remove it if no process is issuing`);
    }
    await sleep(POLL_MS, undefined, signal === undefined ? undefined : { signal }).catch((error: unknown) => {
      throw signal?.aborted === true ? signal.reason : error;
    });
  }
}

/** A lock untouched for `STALE_MS` (`held` is what it holds); undefined for a fresh one or none. */
async function staleLockAt(lockPath: string): Promise<{ readonly held: string | undefined } | undefined> {
  try {
    if (Date.now() - (await stat(lockPath)).mtimeMs <= STALE_MS) return undefined;
    return { held: await holderOf(lockPath) };
  } catch (error) {
    // Released between the failed create and this look: try again at once.
    if (isErrno(error, 'ENOENT')) return undefined;
    const why = error instanceof FileReadError && error.fault !== 'unreadable' ? `: ${error.detail}` : '';
    throw new PkiError(`cannot remove the stale lock ${lockPath}${why}`, { cause: error });
  }
}

/**
 * Removes the lock if it still holds `held`: not one another process took meanwhile (after a holder
 * was paused past `STALE_MS`, or another waiter removed the same stale lock first).
 */
async function removeIfHeldBy(lockPath: string, held: string | undefined): Promise<void> {
  try {
    if ((await holderOf(lockPath)) !== held) return;
    await unlink(lockPath);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw new PkiError(`cannot remove the stale lock ${lockPath}`, { cause: error });
  }
}

/**
 * The holder a lock names; undefined for one another user left that this one may not read (it may still
 * remove it). A FIFO there (read whole, it held the start for ever), a folder or a longer file is no lock a
 * holder made: `FileReadError`.
 */
async function holderOf(lockPath: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(lockPath, { setting: 'an issue lock', maxBytes: MAX_LOCK_BYTES })).toString('utf8');
  } catch (error) {
    if (isErrno(error, 'EACCES') || isErrno(error, 'EPERM')) return undefined;
    throw error;
  }
}
