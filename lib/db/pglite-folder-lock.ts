import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DatabaseUnavailable } from '../../interfaces/errors.js';
import type { LockMarkerMessage } from './pglite-lock-marker.js';
import { FileReadError, readRegularFileSync } from '../files/regular-file.js';

/**
 * The file beside a PGlite folder (`<folder>.lock`) that names the process that has it open: beside,
 * not inside, because PGlite's first start (initdb) wants an empty folder.
 */
export function pgliteLockFile(folder: string): string {
  return `${folder}.lock`;
}

/** The process warning's code when an opener takes over the lock file of a process that is gone. */
export const PGLITE_LOCK_TAKEN_OVER_WARNING = 'IRONLIME_PGLITE_LOCK_TAKEN_OVER';

/** How often a holder marks its lock files in use (their modification time), for openers in another pid namespace. */
export const PGLITE_LOCK_MARK_MS = 5_000;

/**
 * How long the lock file of a holder in another pid namespace stays unmarked before it is taken over:
 * many marks, so a holder whose event loop PGlite keeps busy for a while is not taken for gone.
 */
export const PGLITE_LOCK_STALE_MS = 60_000;

/** What the lock file holds. */
interface LockHolder {
  readonly pid: number;
  /** The kernel's start time of that process (`/proc/<pid>/stat`), telling it from a later one with the same pid; null where unknown. */
  readonly processStart: string | null;
  readonly hostname: string;
  /** The pid namespace (`/proc/self/ns/pid`) `pid` belongs to; null where unknown (off Linux, or a file written before it was recorded). */
  readonly pidNamespace: string | null;
  readonly openedAt: string;
}

/** Lock files this process holds: released on close and, for any left, when the process exits. */
const held = new Set<string>();
let releaseOnExit = false;
let marker: Worker | undefined;

/**
 * Takes the folder of an embedded PGlite for this process. PGlite is PostgreSQL run inside the
 * process, with no server to arbitrate: two processes (a service and `ironlime db migrate` or
 * `audit export` beside it) on one folder lose each other's committed writes or crash. The lock file
 * is created exclusively with the holder's pid, process start time and host name; one left on this
 * host by a process that is gone (killed, or a later process now has its pid) is taken over with a
 * process warning. One written on another host name is refused: pids of another machine say nothing
 * here. Nor do those of another pid namespace on this host (a second container on the volume with the
 * same host name, as with host networking, pid 1 as well): the holder marks its file every
 * `PGLITE_LOCK_MARK_MS`, and such a file is taken over only once unmarked for `PGLITE_LOCK_STALE_MS`
 * (a restarted container's earlier process).
 *
 * @returns the release: removes the lock file (call it once the database is closed).
 * @throws DatabaseUnavailable when another process (or an earlier open in this one) has the folder.
 */
export function lockPgliteFolder(folder: string): () => void {
  const file = pgliteLockFile(folder);
  if (held.has(file)) {
    throw new DatabaseUnavailable(`PGlite in ${folder} is already open in this process (pid ${process.pid}): close it before opening it again`);
  }
  const mine: LockHolder = {
    pid: process.pid,
    processStart: processStart(process.pid),
    hostname: hostname(),
    pidNamespace: pidNamespace(),
    openedAt: new Date().toISOString(),
  };
  if (!create(file, mine)) takeOver(folder, file, mine);
  held.add(file);
  marker ??= startMarker();
  marker.postMessage({ mark: file } satisfies LockMarkerMessage);
  if (!releaseOnExit) {
    releaseOnExit = true;
    process.once('exit', () => {
      for (const left of held) rmSync(left, { force: true });
    });
  }
  return () => {
    if (!held.delete(file)) return;
    marker?.postMessage({ unmark: file } satisfies LockMarkerMessage);
    rmSync(file, { force: true });
  };
}

/**
 * Creates `file` holding `holder`, complete or not at all (a hard link fails when the name exists);
 * false when it exists. A folder it cannot write in (read-only) is a coded error like any other.
 */
function create(file: string, holder: LockHolder): boolean {
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    writeFileSync(draft, JSON.stringify(holder));
  } catch (error) {
    throw new DatabaseUnavailable(`cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DatabaseUnavailable(`cannot create the lock file ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    rmSync(draft, { force: true });
  }
}

/** Replaces the lock file of a process that is gone; anything else is refused. */
function takeOver(folder: string, file: string, mine: LockHolder): void {
  const text = readText(file);
  const holder = parse(text);
  if (holder === undefined) refuseMarkedUnreadable(folder, file);
  else refuseLiveHolder(folder, file, holder);
  // Moved aside, then checked: another opener may have taken it over between the read and the move.
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    throw new DatabaseUnavailable(`PGlite in ${folder}: another process is taking over its lock file ${file} at the same time`, { cause: error });
  }
  const moved = readText(aside);
  if (moved !== text) {
    try {
      linkSync(aside, file);
    } catch {
      // Its taker's file is back already, or a newer one stands there.
    }
    rmSync(aside, { force: true });
    throw new DatabaseUnavailable(`PGlite in ${folder}: another process took over its lock file ${file} at the same time`);
  }
  rmSync(aside, { force: true });
  if (!create(file, mine)) throw new DatabaseUnavailable(`PGlite in ${folder}: another process created its lock file ${file} at the same time`);
  const gone = holder === undefined ? `its unreadable lock file was unmarked for ${PGLITE_LOCK_STALE_MS / 1000} s` : `its holder, pid ${holder.pid} since ${holder.openedAt}, is gone`;
  process.emitWarning(`took over the lock file of PGlite in ${folder}: ${gone}`, {
    code: PGLITE_LOCK_TAKEN_OVER_WARNING,
  });
}

/** An empty or garbled lock file (a crash before its data reached the disk) is refused while its holder, if any, still marks it. */
function refuseMarkedUnreadable(folder: string, file: string): void {
  if (markedWithin(file, PGLITE_LOCK_STALE_MS)) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder}: its lock file ${file} is unreadable and was marked in use within the last ${PGLITE_LOCK_STALE_MS / 1000} s; ` +
        `if no process uses the folder, delete the file (it is taken over once unmarked for ${PGLITE_LOCK_STALE_MS / 1000} s)`,
    );
  }
}

/** Refuses the take-over when the lock file's holder may still run (another host, a marked file of another pid namespace, a live pid). */
function refuseLiveHolder(folder: string, file: string, holder: LockHolder): void {
  if (holder.hostname !== hostname()) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder} is open on another host: pid ${holder.pid} on ${holder.hostname}, since ${holder.openedAt} (lock file ${file}). ` +
        'Its pid tells nothing here (another machine, or another container on the same volume), so this start cannot tell whether it still runs: ' +
        'stop it first, or, if it is gone, delete the lock file; PostgreSQL (databaseUrl) serves several processes',
    );
  }
  if (inOtherPidNamespace(holder)) {
    if (markedWithin(file, PGLITE_LOCK_STALE_MS)) {
      throw new DatabaseUnavailable(
        `PGlite in ${folder} is open in another pid namespace on this host (another container on the same volume with this host name): ` +
          `pid ${holder.pid} there, since ${holder.openedAt} (lock file ${file}, marked in use within the last ${PGLITE_LOCK_STALE_MS / 1000} s). ` +
          `Its pid tells nothing here: stop that process first (a lock file unmarked for ${PGLITE_LOCK_STALE_MS / 1000} s is taken over), ` +
          'or use PostgreSQL (databaseUrl) for several processes',
      );
    }
  } else if (alive(holder)) {
    throw new DatabaseUnavailable(
      `PGlite in ${folder} is open in another process: pid ${holder.pid} on ${holder.hostname}, since ${holder.openedAt} (lock file ${file}). ` +
        'PGlite admits one process per folder: stop that process first, or use PostgreSQL (databaseUrl) for several processes',
    );
  }
}

/** Longest lock file read: a holder's JSON is a few hundred bytes. */
const MAX_LOCK_FILE_BYTES = 64 * 1024;

/** The lock file's text; a FIFO planted there (which held the start for ever), a folder or a longer file is refused. */
function readText(file: string): string {
  try {
    return readRegularFileSync(file, { setting: 'the PGlite lock file', maxBytes: MAX_LOCK_FILE_BYTES }).toString('utf8');
  } catch (error) {
    const detail = error instanceof FileReadError ? error.detail : (error as Error).message;
    throw new DatabaseUnavailable(`cannot read the lock file ${file}: ${detail}`, { cause: error });
  }
}

function parse(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || !Number.isSafeInteger(value.pid) || value.pid <= 0) return undefined;
    return {
      pid: value.pid,
      processStart: typeof value.processStart === 'string' ? value.processStart : null,
      hostname: typeof value.hostname === 'string' ? value.hostname : 'unknown host',
      pidNamespace: typeof value.pidNamespace === 'string' ? value.pidNamespace : null,
      openedAt: typeof value.openedAt === 'string' ? value.openedAt : 'unknown',
    };
  } catch {
    return undefined;
  }
}

/**
 * Marks the lock files this process holds as in use (see `PGLITE_LOCK_STALE_MS`) from a thread of its
 * own: PGlite runs each query synchronously in the main thread, so a timer there stands still for as
 * long as a big query or migration, and a holder busy past `PGLITE_LOCK_STALE_MS` was taken for gone.
 */
function startMarker(): Worker {
  // No Node options of the process: one about the main script's input (-e, --input-type) breaks a thread's start.
  const worker = new Worker(new URL('./pglite-lock-marker.js', import.meta.url), { workerData: PGLITE_LOCK_MARK_MS, execArgv: [] });
  worker.unref();
  return worker;
}

/** Whether the lock file's holder has its pid in a pid namespace other than this process's. */
function inOtherPidNamespace(holder: LockHolder): boolean {
  const here = pidNamespace();
  return holder.pidNamespace !== null && here !== null && holder.pidNamespace !== here;
}

/** Whether `file` was marked within the last `ms`; one that cannot be looked at counts as marked. */
function markedWithin(file: string, ms: number): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs < ms;
  } catch {
    return true;
  }
}

/** This process's pid namespace (`pid:[<inode>]`); null off Linux. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/**
 * Whether the process that wrote the lock file in this pid namespace may still run. Its pid in this process
 * is an earlier process's (opens in this process are in `held`); a pid with no process, or whose
 * process started at another time, is gone. Unknown start times count as alive.
 */
function alive(holder: LockHolder): boolean {
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the process exists, under another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = processStart(holder.pid);
  return holder.processStart === null || start === null || start === holder.processStart;
}

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), after the parenthesised command name; null off Linux. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
